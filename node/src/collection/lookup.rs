//! `lookup_from`: the ids in a query's examples may name points of another collection, and
//! another of its vectors. The node knows the collections; the query layer asks it through
//! `CollectionLookup`, so a collection never holds references to its siblings.

use std::sync::Arc;

use super::Collection;
use crate::error::Result;
use crate::model::query::LookupLocation;

/// Finds a collection by name (the node's registry).
pub trait CollectionLookup: Send + Sync {
    fn lookup_collection(&self, name: &str) -> Result<Arc<Collection>>;
}

/// Where the example ids of one query (or prefetch) are looked up.
pub struct Examples {
    /// The collection holding the examples; `None` is the searched collection itself.
    other: Option<Arc<Collection>>,
    /// The vector the examples are taken from: `lookup_from.vector`, else the query's `using`.
    pub vector: String,
}

impl Examples {
    pub fn new(
        searched: &Collection,
        using: &str,
        from: Option<&LookupLocation>,
        lookup: &dyn CollectionLookup,
    ) -> Result<Examples> {
        let Some(from) = from else {
            return Ok(Examples {
                other: None,
                vector: using.to_string(),
            });
        };
        // The name may be an alias: compare the collections it stands for.
        let found = lookup.lookup_collection(&from.collection)?;
        let other = (found.name != searched.name).then_some(found);
        Ok(Examples {
            other,
            vector: from.vector.clone().unwrap_or_else(|| using.to_string()),
        })
    }

    /// The collection to read the examples' vectors from.
    pub fn collection<'a>(&'a self, searched: &'a Collection) -> &'a Collection {
        self.other.as_deref().unwrap_or(searched)
    }

    /// Examples from the searched collection never come back in its results (Qdrant's rule);
    /// points of another collection are only a source of vectors.
    pub fn excluded(&self) -> bool {
        self.other.is_none()
    }

    /// Whether an example's stored vector is already in the query's stored form.
    pub fn is_query_space(&self, using: &str) -> bool {
        self.other.is_none() && self.vector == using
    }
}
