//! What a caller may do (its `Access`) and what a call needs (`Need`), as Qdrant's RBAC models
//! them: global read (`r`, the read-only key) or manage (`m`, the API key), or a list of
//! collections each readable (`r`), writable (`rw`) or writable for points only (`prw`).
//! A refusal is the text after "Forbidden: " (HTTP 403, gRPC `PermissionDenied`).

use std::collections::BTreeMap;

use crate::model::alias::AliasDescription;

/// Rights over the whole storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalAccess {
    Read,
    Manage,
}

/// Rights over one collection of a collection-scoped token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionMode {
    Read,
    ReadWrite,
    /// Points only: no snapshots, payload indexes, vector names or cluster info.
    PointsReadWrite,
}

/// The rights a request carries (a request extension on both APIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Global(GlobalAccess),
    Collections(BTreeMap<String, CollectionMode>),
}

/// What a call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Anyone authenticated (lists are filtered to what the caller may see).
    Nothing,
    GlobalRead,
    GlobalManage,
    /// Access to one collection; `write` to change its points, `manage` for what only global
    /// manage rights may do to it, `extras` for more than points (snapshots, indexes, cluster
    /// info: refused to `prw`).
    Collection {
        name: String,
        write: bool,
        manage: bool,
        extras: bool,
    },
}

impl Need {
    pub fn read(name: impl Into<String>) -> Need {
        Need::Collection {
            name: name.into(),
            write: false,
            manage: false,
            extras: false,
        }
    }
    pub fn write(name: impl Into<String>) -> Need {
        Need::Collection {
            name: name.into(),
            write: true,
            manage: false,
            extras: false,
        }
    }
    /// Reads more than points (snapshot lists, cluster info).
    pub fn read_extras(name: impl Into<String>) -> Need {
        Need::Collection {
            name: name.into(),
            write: false,
            manage: false,
            extras: true,
        }
    }
    /// Changes more than points (payload indexes, vector names, snapshots).
    pub fn write_extras(name: impl Into<String>) -> Need {
        Need::Collection {
            name: name.into(),
            write: true,
            manage: false,
            extras: true,
        }
    }
}

impl Access {
    pub const FULL: Access = Access::Global(GlobalAccess::Manage);

    /// Grants `need`, or says why not (the text after "Forbidden: ").
    pub fn check(&self, need: &Need) -> Result<(), String> {
        match (self, need) {
            (Access::Global(GlobalAccess::Manage), _) | (_, Need::Nothing) => Ok(()),
            (Access::Global(GlobalAccess::Read), Need::GlobalRead) => Ok(()),
            (Access::Global(GlobalAccess::Read), Need::Collection { write, manage, .. }) if !write && !manage => Ok(()),
            (Access::Global(GlobalAccess::Read), _) => Err("Global manage access is required".into()),
            (Access::Collections(_), Need::GlobalRead | Need::GlobalManage) => Err("Global access is required".into()),
            (
                Access::Collections(allowed),
                Need::Collection {
                    name,
                    write,
                    manage,
                    extras,
                },
            ) => {
                let Some(mode) = allowed.get(name) else {
                    return Err(format!("Access to collection {name} is required"));
                };
                if *extras && *mode == CollectionMode::PointsReadWrite {
                    return Err(format!("Only points access is allowed for collection {name}"));
                }
                if *write && *mode == CollectionMode::Read {
                    return Err(format!("Write access to collection {name} is required"));
                }
                if *manage {
                    return Err("Manage access for this operation is required".into());
                }
                Ok(())
            }
        }
    }

    /// Whether a listing shows `collection` (or an alias of that name) to this caller.
    pub fn sees(&self, collection: &str) -> bool {
        match self {
            Access::Global(_) => true,
            Access::Collections(allowed) => allowed.contains_key(collection),
        }
    }

    /// Whether `GET /aliases` (gRPC `ListAliases`) shows `alias` to this caller: both its name
    /// and its collection must be ones the caller may see.
    pub fn sees_alias(&self, alias: &AliasDescription) -> bool {
        self.sees(&alias.alias_name) && self.sees(&alias.collection_name)
    }

    /// Whether the caller has rights over the whole storage.
    pub fn is_global(&self) -> bool {
        matches!(self, Access::Global(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collections(list: &[(&str, CollectionMode)]) -> Access {
        Access::Collections(list.iter().map(|(n, m)| (n.to_string(), *m)).collect())
    }

    #[test]
    fn global_rights() {
        let read = Access::Global(GlobalAccess::Read);
        assert_eq!(read.check(&Need::GlobalRead), Ok(()));
        assert_eq!(read.check(&Need::read_extras("c")), Ok(()));
        assert_eq!(
            read.check(&Need::GlobalManage).unwrap_err(),
            "Global manage access is required"
        );
        assert_eq!(
            read.check(&Need::write("c")).unwrap_err(),
            "Global manage access is required"
        );
        for need in [Need::GlobalManage, Need::write_extras("c"), Need::Nothing] {
            assert_eq!(Access::FULL.check(&need), Ok(()));
        }
    }

    #[test]
    fn collection_rights() {
        use CollectionMode::*;
        let token = collections(&[("r", Read), ("rw", ReadWrite), ("prw", PointsReadWrite)]);
        assert_eq!(token.check(&Need::GlobalRead).unwrap_err(), "Global access is required");
        assert_eq!(
            token.check(&Need::GlobalManage).unwrap_err(),
            "Global access is required"
        );
        assert_eq!(token.check(&Need::Nothing), Ok(()));
        assert_eq!(
            token.check(&Need::read("other")).unwrap_err(),
            "Access to collection other is required"
        );
        assert_eq!(token.check(&Need::read("r")), Ok(()));
        assert_eq!(
            token.check(&Need::write("r")).unwrap_err(),
            "Write access to collection r is required"
        );
        assert_eq!(token.check(&Need::write("rw")), Ok(()));
        assert_eq!(token.check(&Need::write("prw")), Ok(()));
        assert_eq!(
            token.check(&Need::read_extras("prw")).unwrap_err(),
            "Only points access is allowed for collection prw"
        );
        assert_eq!(token.check(&Need::write_extras("rw")), Ok(()));
        let manage = Need::Collection {
            name: "rw".into(),
            write: true,
            manage: true,
            extras: true,
        };
        assert_eq!(
            token.check(&manage).unwrap_err(),
            "Manage access for this operation is required"
        );
        assert!(token.sees("r") && !token.sees("other"));
    }
}
