//! Collection aliases: other names for a collection, switched atomically (`POST /collections/aliases`).
//! The table and its rules are here once; the node keeps one standalone, the cluster state one
//! replicated through Raft.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `POST /collections/aliases` body: applied in order, all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeAliases {
    pub actions: Vec<AliasAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasAction {
    CreateAlias {
        collection_name: String,
        alias_name: String,
    },
    DeleteAlias {
        alias_name: String,
    },
    RenameAlias {
        old_alias_name: String,
        new_alias_name: String,
    },
}

/// One entry of `GET /aliases`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasDescription {
    pub alias_name: String,
    pub collection_name: String,
}

/// Alias -> collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AliasTable(BTreeMap<String, String>);

impl AliasTable {
    /// The collection `alias` names, if it is an alias.
    pub fn resolve(&self, alias: &str) -> Option<&str> {
        self.0.get(alias).map(String::as_str)
    }

    pub fn contains(&self, alias: &str) -> bool {
        self.0.contains_key(alias)
    }

    /// The table after `actions`, or the first action's error (the table is unchanged).
    /// `collection_exists` tells real collection names. Qdrant's rules: an alias must name an
    /// existing collection and may not be a collection's name; creating an existing alias
    /// repoints it; deleting a missing alias is a no-op; renaming a missing one is a 404.
    pub fn apply(&self, actions: &[AliasAction], collection_exists: &dyn Fn(&str) -> bool) -> Result<AliasTable> {
        let mut next = self.clone();
        for action in actions {
            match action {
                AliasAction::CreateAlias {
                    collection_name,
                    alias_name,
                } => {
                    if !collection_exists(collection_name) {
                        return Err(Error::not_found(format!(
                            "Collection `{collection_name}` doesn't exist!"
                        )));
                    }
                    if collection_exists(alias_name) {
                        return Err(Error::AlreadyExists(format!(
                            "Collection `{alias_name}` already exists!"
                        )));
                    }
                    crate::model::collection::validate_collection_name(alias_name)?;
                    next.0.insert(alias_name.clone(), collection_name.clone());
                }
                AliasAction::DeleteAlias { alias_name } => {
                    next.0.remove(alias_name);
                }
                AliasAction::RenameAlias {
                    old_alias_name,
                    new_alias_name,
                } => {
                    let collection = next
                        .0
                        .remove(old_alias_name)
                        .ok_or_else(|| Error::not_found(format!("Alias {old_alias_name} does not exists!")))?;
                    if collection_exists(new_alias_name) {
                        return Err(Error::AlreadyExists(format!(
                            "Collection `{new_alias_name}` already exists!"
                        )));
                    }
                    crate::model::collection::validate_collection_name(new_alias_name)?;
                    next.0.insert(new_alias_name.clone(), collection);
                }
            }
        }
        Ok(next)
    }

    /// Drops the aliases of a deleted collection.
    pub fn remove_collection(&mut self, collection: &str) {
        self.0.retain(|_, c| c != collection);
    }

    /// Every alias, by alias name.
    pub fn list(&self) -> Vec<AliasDescription> {
        self.0
            .iter()
            .map(|(a, c)| AliasDescription {
                alias_name: a.clone(),
                collection_name: c.clone(),
            })
            .collect()
    }

    /// The aliases of one collection.
    pub fn of_collection(&self, collection: &str) -> Vec<AliasDescription> {
        self.list()
            .into_iter()
            .filter(|a| a.collection_name == collection)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(c: &str, a: &str) -> AliasAction {
        AliasAction::CreateAlias {
            collection_name: c.into(),
            alias_name: a.into(),
        }
    }

    #[test]
    fn parses_qdrants_json() {
        let body: ChangeAliases = serde_json::from_str(
            r#"{"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a"}},
                            {"delete_alias": {"alias_name": "a"}},
                            {"rename_alias": {"old_alias_name": "a", "new_alias_name": "b"}}]}"#,
        )
        .unwrap();
        assert_eq!(body.actions[0], create("c", "a"));
        assert_eq!(body.actions.len(), 3);
    }

    #[test]
    fn applies_all_or_nothing() {
        let exists = |n: &str| n == "c1" || n == "c2";
        let t = AliasTable::default().apply(&[create("c1", "a")], &exists).unwrap();
        assert_eq!(t.resolve("a"), Some("c1"));
        // switch a to c2 and add b, atomically
        let switch = [
            AliasAction::DeleteAlias { alias_name: "a".into() },
            create("c2", "a"),
            create("c2", "b"),
        ];
        let t2 = t.apply(&switch, &exists).unwrap();
        assert_eq!((t2.resolve("a"), t2.resolve("b")), (Some("c2"), Some("c2")));
        // a failing action leaves the table as it was
        let bad = [create("c2", "x"), create("missing", "y")];
        assert!(matches!(t2.apply(&bad, &exists), Err(Error::NotFound(_))));
        assert!(matches!(
            t2.apply(&[create("c1", "c2")], &exists),
            Err(Error::AlreadyExists(_))
        ));
        let rename = AliasAction::RenameAlias {
            old_alias_name: "nope".into(),
            new_alias_name: "z".into(),
        };
        assert!(matches!(t2.apply(&[rename], &exists), Err(Error::NotFound(_))));
        let mut t3 = t2.clone();
        t3.remove_collection("c2");
        assert!(t3.list().is_empty());
        assert_eq!(t2.of_collection("c2").len(), 2);
    }
}
