//! Who may call what over gRPC, with the rules of REST (`api/auth`): the auth layer decides the
//! methods that are public or global by their path ([`method_need`]) and leaves the caller's
//! [`Access`] in the request's extensions; the methods about one collection check it with
//! [`guard`] once the request's `collection_name` (and any collection it looks up) is known.

use qdrant_client::qdrant as grpc;
use tonic::{Code, Request, Status};

use crate::api::auth::{Access, Need};
use crate::error::Error;

/// What a method needs, from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodNeed {
    /// Health checks: no credential at all.
    Public,
    /// Decided before the call.
    Global(Need),
    /// About one collection: the service checks it ([`guard`]).
    Collection,
}

/// The need of the method at `path` (`/package.Service/Method`).
pub fn method_need(path: &str) -> MethodNeed {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return MethodNeed::Global(Need::GlobalManage);
    };
    match (service, method) {
        ("qdrant.Qdrant", "HealthCheck") | ("grpc.health.v1.Health", _) => MethodNeed::Public,
        ("qdrant.Points", _) => MethodNeed::Collection,
        ("qdrant.Collections", "List" | "ListAliases") => MethodNeed::Global(Need::Nothing),
        (
            "qdrant.Collections",
            "Get"
            | "ListCollectionAliases"
            | "CollectionClusterInfo"
            | "CollectionExists"
            | "UpdateCollectionClusterSetup"
            | "ListShardKeys",
        ) => MethodNeed::Collection,
        ("qdrant.Snapshots", "Create" | "List" | "Delete") => MethodNeed::Collection,
        ("qdrant.Snapshots", "ListFull") => MethodNeed::Global(Need::GlobalRead),
        // Creating, changing, deleting collections, aliases, shard keys, full snapshots; and
        // whatever this list does not know.
        _ => MethodNeed::Global(Need::GlobalManage),
    }
}

/// The caller's access (set by the auth layer on every call it lets through).
pub fn access_of<T>(request: &Request<T>) -> Result<&Access, Status> {
    request
        .extensions()
        .get::<Access>()
        .ok_or_else(|| Status::new(Code::PermissionDenied, "Forbidden: no access rights were resolved"))
}

/// Grants `need` to the caller of `request`, or refuses with `PermissionDenied`.
pub fn guard<T>(request: &Request<T>, need: Need) -> Result<(), Status> {
    access_of(request)?
        .check(&need)
        .map_err(|why| super::error::status(Error::Forbidden(why)))
}

/// Also grants reading every collection the request looks up points in.
pub fn guard_lookups<T: Lookups>(request: &Request<T>) -> Result<(), Status> {
    let mut names = Vec::new();
    request.get_ref().lookups(&mut names);
    names.into_iter().try_for_each(|name| guard(request, Need::read(name)))
}

/// The other collections a request reads (`lookup_from`, `with_lookup`).
pub trait Lookups {
    fn lookups(&self, _out: &mut Vec<String>) {}
}

macro_rules! no_lookups {
    ($($t:ident),* $(,)?) => { $(impl Lookups for grpc::$t {})* };
}

no_lookups!(
    UpsertPoints,
    DeletePoints,
    GetPoints,
    UpdatePointVectors,
    DeletePointVectors,
    SetPayloadPoints,
    DeletePayloadPoints,
    ClearPayloadPoints,
    CreateFieldIndexCollection,
    DeleteFieldIndexCollection,
    CreateVectorNameRequest,
    DeleteVectorNameRequest,
    SearchPoints,
    SearchBatchPoints,
    ScrollPoints,
    CountPoints,
    UpdateBatchPoints,
    FacetCounts,
    SearchMatrixPoints,
);

fn location(l: &Option<grpc::LookupLocation>, out: &mut Vec<String>) {
    if let Some(l) = l {
        out.push(l.collection_name.clone());
    }
}

fn with_lookup(w: &Option<grpc::WithLookup>, out: &mut Vec<String>) {
    if let Some(w) = w {
        out.push(w.collection.clone());
    }
}

fn prefetches(p: &[grpc::PrefetchQuery], out: &mut Vec<String>) {
    for p in p {
        location(&p.lookup_from, out);
        prefetches(&p.prefetch, out);
    }
}

impl Lookups for grpc::SearchPointGroups {
    fn lookups(&self, out: &mut Vec<String>) {
        with_lookup(&self.with_lookup, out);
    }
}

impl Lookups for grpc::RecommendPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        location(&self.lookup_from, out);
    }
}

impl Lookups for grpc::RecommendBatchPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        self.recommend_points.iter().for_each(|r| r.lookups(out));
    }
}

impl Lookups for grpc::RecommendPointGroups {
    fn lookups(&self, out: &mut Vec<String>) {
        location(&self.lookup_from, out);
        with_lookup(&self.with_lookup, out);
    }
}

impl Lookups for grpc::DiscoverPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        location(&self.lookup_from, out);
    }
}

impl Lookups for grpc::DiscoverBatchPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        self.discover_points.iter().for_each(|d| d.lookups(out));
    }
}

impl Lookups for grpc::QueryPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        location(&self.lookup_from, out);
        prefetches(&self.prefetch, out);
    }
}

impl Lookups for grpc::QueryBatchPoints {
    fn lookups(&self, out: &mut Vec<String>) {
        self.query_points.iter().for_each(|q| q.lookups(out));
    }
}

impl Lookups for grpc::QueryPointGroups {
    fn lookups(&self, out: &mut Vec<String>) {
        location(&self.lookup_from, out);
        prefetches(&self.prefetch, out);
        with_lookup(&self.with_lookup, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_by_path() {
        assert_eq!(method_need("/grpc.health.v1.Health/Check"), MethodNeed::Public);
        assert_eq!(method_need("/qdrant.Qdrant/HealthCheck"), MethodNeed::Public);
        assert_eq!(method_need("/qdrant.Points/Upsert"), MethodNeed::Collection);
        assert_eq!(method_need("/qdrant.Collections/Get"), MethodNeed::Collection);
        assert_eq!(
            method_need("/qdrant.Collections/List"),
            MethodNeed::Global(Need::Nothing)
        );
        assert_eq!(
            method_need("/qdrant.Collections/Create"),
            MethodNeed::Global(Need::GlobalManage)
        );
        assert_eq!(
            method_need("/qdrant.Collections/UpdateAliases"),
            MethodNeed::Global(Need::GlobalManage)
        );
        assert_eq!(
            method_need("/qdrant.Snapshots/ListFull"),
            MethodNeed::Global(Need::GlobalRead)
        );
        assert_eq!(method_need("/qdrant.Snapshots/List"), MethodNeed::Collection);
        assert_eq!(method_need("/qdrant.Unknown/X"), MethodNeed::Global(Need::GlobalManage));
    }

    #[test]
    fn lookups_of_nested_queries() {
        let query = grpc::QueryPoints {
            lookup_from: Some(grpc::LookupLocation {
                collection_name: "a".into(),
                ..Default::default()
            }),
            prefetch: vec![grpc::PrefetchQuery {
                prefetch: vec![grpc::PrefetchQuery {
                    lookup_from: Some(grpc::LookupLocation {
                        collection_name: "b".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut names = Vec::new();
        grpc::QueryBatchPoints {
            query_points: vec![query],
            ..Default::default()
        }
        .lookups(&mut names);
        assert_eq!(names, ["a", "b"]);
    }
}
