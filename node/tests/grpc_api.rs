//! End-to-end tests of the public gRPC API (port 6334) against the real binary, driven by the
//! official Rust SDK (`qdrant_client::Qdrant`) the way users call it: collections, points,
//! payloads, filters, search/query/recommend against brute force, errors, API keys, health.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::grpc::{
    connect, default_vector, dense, expect_code, ids_of, int, named_vectors, num_id, ranking, run, sparse, Metric,
};
use common::{vectors, Server};
use qdrant_client::qdrant::points_update_operation::{
    ClearPayload, DeletePayload, DeletePoints, DeleteVectors, Operation, OverwritePayload, PointStructList, SetPayload,
    UpdateVectors,
};
use qdrant_client::qdrant::{
    vectors_config, Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeleteFieldIndexCollectionBuilder, DeletePayloadPointsBuilder, DeletePointVectorsBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, GetPointsBuilder, HnswConfigDiffBuilder, NamedVectors, OptimizersConfigDiffBuilder,
    PayloadIncludeSelector, PayloadSchemaType, PointId, PointStruct, PointVectors, PointsIdsList, PointsSelector,
    PointsUpdateOperation, QueryBatchPointsBuilder, QueryPointsBuilder, Range, RecommendBatchPointsBuilder,
    RecommendPointsBuilder, RecommendStrategy, RetrievedPoint, ScoredPoint, ScrollPointsBuilder,
    SearchBatchPointsBuilder, SearchParamsBuilder, SearchPointsBuilder, SetPayloadPointsBuilder,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpdateBatchPointsBuilder, UpdateCollectionBuilder,
    UpdatePointVectorsBuilder, UpdateStatus, UpsertPointsBuilder, Value, Vector, VectorParamsBuilder,
    VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant};
use tonic::Code;

/// Every test body must finish within this.
const LIMIT: Duration = Duration::from_secs(120);

fn payload(pairs: Vec<(&str, Value)>) -> Payload {
    Payload::from(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
    )
}

fn map(pairs: Vec<(&str, Value)>) -> HashMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn selector(ids: &[u64]) -> PointsSelector {
    PointsSelector::from(ids.iter().map(|i| PointId::from(*i)).collect::<Vec<_>>())
}

fn id_list(ids: &[u64]) -> PointsIdsList {
    PointsIdsList {
        ids: ids.iter().map(|i| PointId::from(*i)).collect(),
    }
}

fn retrieved_ids(points: &[RetrievedPoint]) -> Vec<u64> {
    points.iter().map(|p| num_id(&p.id)).collect()
}

/// Upserts `data` (id = index) with payload `{"n": id}` into the unnamed vector, `wait=true`.
async fn upsert_plain(c: &Qdrant, name: &str, data: &[Vec<f32>]) {
    for (chunk_no, chunk) in data.chunks(100).enumerate() {
        let points: Vec<PointStruct> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = (chunk_no * 100 + i) as u64;
                PointStruct::new(id, v.clone(), payload(vec![("n", Value::from(id as i64))]))
            })
            .collect();
        let r = c
            .upsert_points(UpsertPointsBuilder::new(name, points).wait(true))
            .await
            .unwrap_or_else(|e| panic!("upsert into {name}: {e}"));
        assert_eq!(
            r.result.map(|u| u.status),
            Some(UpdateStatus::Completed as i32),
            "upsert into {name}"
        );
    }
}

async fn exact_count(c: &Qdrant, name: &str, filter: Option<Filter>) -> u64 {
    let mut req = CountPointsBuilder::new(name).exact(true);
    if let Some(f) = filter {
        req = req.filter(f);
    }
    c.count(req)
        .await
        .unwrap_or_else(|e| panic!("count {name}: {e}"))
        .result
        .expect("count result")
        .count
}

async fn get_one(c: &Qdrant, name: &str, id: u64) -> RetrievedPoint {
    let r = c
        .get_points(
            GetPointsBuilder::new(name, vec![PointId::from(id)])
                .with_payload(true)
                .with_vectors(true),
        )
        .await
        .unwrap_or_else(|e| panic!("get {id} from {name}: {e}"));
    assert_eq!(r.result.len(), 1, "get {id} from {name}: {:?}", r.result);
    r.result.into_iter().next().unwrap()
}

/// All ids matching `filter`, scrolled in one page, ascending.
async fn scroll_ids(c: &Qdrant, name: &str, filter: Filter) -> Vec<u64> {
    let r = c
        .scroll(ScrollPointsBuilder::new(name).filter(filter).limit(1000))
        .await
        .unwrap_or_else(|e| panic!("scroll {name}: {e}"));
    assert_eq!(r.next_page_offset, None, "one page expected");
    retrieved_ids(&r.result)
}

#[test]
fn collection_lifecycle() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        assert!(!c.collection_exists("plain").await.unwrap());
        let plain =
            || CreateCollectionBuilder::new("plain").vectors_config(VectorParamsBuilder::new(16, Distance::Cosine));
        assert!(c.create_collection(plain()).await.unwrap().result);
        let msg = expect_code("create twice", c.create_collection(plain()).await, Code::AlreadyExists);
        assert!(msg.contains("already exists"), "{msg}");

        // Named dense vectors and a sparse vector.
        let mut dense_cfg = VectorsConfigBuilder::default();
        dense_cfg.add_named_vector_params("image", VectorParamsBuilder::new(4, Distance::Dot));
        dense_cfg.add_named_vector_params("text", VectorParamsBuilder::new(8, Distance::Euclid));
        let mut sparse_cfg = SparseVectorsConfigBuilder::default();
        sparse_cfg.add_named_vector_params("keywords", SparseVectorParamsBuilder::default());
        let r = c
            .create_collection(
                CreateCollectionBuilder::new("named")
                    .vectors_config(dense_cfg)
                    .sparse_vectors_config(sparse_cfg),
            )
            .await
            .unwrap();
        assert!(r.result);

        // Info: config shape and counts.
        let info = c.collection_info("plain").await.unwrap().result.expect("info");
        assert_eq!(info.points_count, Some(0), "{info:?}");
        let params = info.config.as_ref().and_then(|c| c.params.clone()).expect("params");
        match params.vectors_config.and_then(|v| v.config) {
            Some(vectors_config::Config::Params(p)) => {
                assert_eq!(p.size, 16, "{p:?}");
                assert_eq!(p.distance, Distance::Cosine as i32, "{p:?}");
            }
            other => panic!("plain: unnamed vector params expected, got {other:?}"),
        }
        assert_eq!(params.shard_number, 1, "{info:?}");

        let info = c.collection_info("named").await.unwrap().result.expect("info");
        let params = info.config.as_ref().and_then(|c| c.params.clone()).expect("params");
        match params.vectors_config.and_then(|v| v.config) {
            Some(vectors_config::Config::ParamsMap(m)) => {
                let names: BTreeSet<&str> = m.map.keys().map(String::as_str).collect();
                assert_eq!(names, BTreeSet::from(["image", "text"]), "{m:?}");
                assert_eq!(m.map["image"].size, 4);
                assert_eq!(m.map["image"].distance, Distance::Dot as i32);
                assert_eq!(m.map["text"].size, 8);
                assert_eq!(m.map["text"].distance, Distance::Euclid as i32);
            }
            other => panic!("named: params map expected, got {other:?}"),
        }
        let sparse_names: Vec<String> = params
            .sparse_vectors_config
            .map(|s| s.map.into_keys().collect())
            .unwrap_or_default();
        assert_eq!(sparse_names, vec!["keywords".to_string()]);

        // List and exists.
        let mut names: Vec<String> = c
            .list_collections()
            .await
            .unwrap()
            .collections
            .into_iter()
            .map(|d| d.name)
            .collect();
        names.sort();
        assert_eq!(names, vec!["named", "plain"]);
        assert!(c.collection_exists("plain").await.unwrap());
        assert!(c.collection_exists("named").await.unwrap());

        // Update optimizer and HNSW parameters; the info reflects them.
        let r = c
            .update_collection(
                UpdateCollectionBuilder::new("plain")
                    .optimizers_config(OptimizersConfigDiffBuilder::default().indexing_threshold(1234))
                    .hnsw_config(HnswConfigDiffBuilder::default().m(32).ef_construct(123)),
            )
            .await
            .unwrap();
        assert!(r.result);
        let info = c.collection_info("plain").await.unwrap().result.expect("info");
        let config = info.config.expect("config");
        let optimizers = config.optimizer_config.expect("optimizer_config");
        assert_eq!(optimizers.indexing_threshold, Some(1234), "{optimizers:?}");
        let hnsw = config.hnsw_config.expect("hnsw_config");
        assert_eq!((hnsw.m, hnsw.ef_construct), (Some(32), Some(123)), "{hnsw:?}");

        // Delete: gone from list and exists; deleting again answers false.
        assert!(c.delete_collection("plain").await.unwrap().result);
        assert!(!c.collection_exists("plain").await.unwrap());
        assert!(!c.delete_collection("plain").await.unwrap().result);
        let names: Vec<String> = c
            .list_collections()
            .await
            .unwrap()
            .collections
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, vec!["named"]);
        expect_code("info of deleted", c.collection_info("plain").await, Code::NotFound);
    });
}

#[test]
fn upsert_get_scroll_count() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        c.create_collection(
            CreateCollectionBuilder::new("p").vectors_config(VectorParamsBuilder::new(4, Distance::Dot)),
        )
        .await
        .unwrap();
        let data = vectors(25, 4, 3);
        let cities = ["London", "Berlin", "Paris"];
        let points: Vec<PointStruct> = data
            .iter()
            .enumerate()
            .map(|(i, v)| {
                PointStruct::new(
                    i as u64,
                    v.clone(),
                    payload(vec![("n", Value::from(i as i64)), ("city", Value::from(cities[i % 3]))]),
                )
            })
            .collect();
        let r = c
            .upsert_points(UpsertPointsBuilder::new("p", points).wait(true))
            .await
            .unwrap();
        assert_eq!(r.result.map(|u| u.status), Some(UpdateStatus::Completed as i32));

        // Get with payload and vectors; a missing id is skipped.
        let r = c
            .get_points(
                GetPointsBuilder::new("p", vec![3.into(), 7.into(), 100.into()])
                    .with_payload(true)
                    .with_vectors(true),
            )
            .await
            .unwrap();
        let mut got = r.result;
        got.sort_by_key(|p| num_id(&p.id));
        assert_eq!(retrieved_ids(&got), vec![3, 7]);
        for p in &got {
            let id = num_id(&p.id) as usize;
            assert_eq!(
                p.payload,
                map(vec![
                    ("n", Value::from(id as i64)),
                    ("city", Value::from(cities[id % 3]))
                ]),
                "payload of {id}"
            );
            assert_eq!(default_vector(&p.vectors), data[id], "vector of {id}");
        }
        // Without payload and vectors; then only one payload key.
        let r = c
            .get_points(
                GetPointsBuilder::new("p", vec![3.into()])
                    .with_payload(false)
                    .with_vectors(false),
            )
            .await
            .unwrap();
        assert_eq!(r.result.len(), 1);
        assert!(r.result[0].payload.is_empty(), "{:?}", r.result[0]);
        assert!(r.result[0].vectors.is_none(), "{:?}", r.result[0]);
        let r = c
            .get_points(
                GetPointsBuilder::new("p", vec![4.into()])
                    .with_payload(PayloadIncludeSelector::new(vec!["city".to_string()])),
            )
            .await
            .unwrap();
        assert_eq!(r.result[0].payload, map(vec![("city", Value::from("Berlin"))]));

        // Scroll in pages of 10 following next_page_offset.
        let mut seen = Vec::new();
        let mut offset: Option<PointId> = None;
        let mut pages = 0;
        loop {
            let mut req = ScrollPointsBuilder::new("p").limit(10).with_payload(true);
            if let Some(o) = offset.clone() {
                req = req.offset(o);
            }
            let r = c.scroll(req).await.unwrap();
            pages += 1;
            assert!(pages <= 3, "scroll does not end");
            for p in &r.result {
                assert_eq!(p.payload.get("n").and_then(int), Some(num_id(&p.id) as i64));
            }
            seen.extend(retrieved_ids(&r.result));
            offset = r.next_page_offset;
            match pages {
                1 => assert_eq!(offset, Some(PointId::from(10))),
                2 => assert_eq!(offset, Some(PointId::from(20))),
                _ => assert_eq!(offset, None),
            }
            if offset.is_none() {
                break;
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<u64>>());
        let r = c
            .scroll(ScrollPointsBuilder::new("p").offset(5).limit(3))
            .await
            .unwrap();
        assert_eq!(retrieved_ids(&r.result), vec![5, 6, 7]);
        assert_eq!(r.next_page_offset, Some(PointId::from(8)));

        // Count, exact, with and without a filter.
        assert_eq!(exact_count(&c, "p", None).await, 25);
        let lt10 = Filter::must([Condition::range(
            "n",
            Range {
                lt: Some(10.0),
                ..Default::default()
            },
        )]);
        assert_eq!(exact_count(&c, "p", Some(lt10)).await, 10);
        let london = Filter::must([Condition::matches("city", "London".to_string())]);
        assert_eq!(exact_count(&c, "p", Some(london)).await, 9);

        // Upserting an existing id replaces the point.
        c.upsert_points(
            UpsertPointsBuilder::new(
                "p",
                vec![PointStruct::new(
                    0,
                    vec![9.0, 8.0, 7.0, 6.0],
                    payload(vec![("new", true.into())]),
                )],
            )
            .wait(true),
        )
        .await
        .unwrap();
        let p = get_one(&c, "p", 0).await;
        assert_eq!(default_vector(&p.vectors), vec![9.0, 8.0, 7.0, 6.0]);
        assert_eq!(p.payload, map(vec![("new", true.into())]));
        assert_eq!(exact_count(&c, "p", None).await, 25);
        let info = c.collection_info("p").await.unwrap().result.unwrap();
        assert_eq!(info.points_count, Some(25));

        // Named dense and sparse vectors.
        let mut dense_cfg = VectorsConfigBuilder::default();
        dense_cfg.add_named_vector_params("image", VectorParamsBuilder::new(4, Distance::Dot));
        dense_cfg.add_named_vector_params("text", VectorParamsBuilder::new(3, Distance::Euclid));
        let mut sparse_cfg = SparseVectorsConfigBuilder::default();
        sparse_cfg.add_named_vector_params("kw", SparseVectorParamsBuilder::default());
        c.create_collection(
            CreateCollectionBuilder::new("nv")
                .vectors_config(dense_cfg)
                .sparse_vectors_config(sparse_cfg),
        )
        .await
        .unwrap();
        let full = NamedVectors::default()
            .add_vector("image", vec![0.1, 0.2, 0.3, 0.4])
            .add_vector("text", vec![1.0, 2.0, 3.0])
            .add_vector("kw", Vector::new_sparse(vec![1, 5, 9], vec![0.5, 0.25, 1.0]));
        let only_image = NamedVectors::default().add_vector("image", vec![0.4, 0.3, 0.2, 0.1]);
        c.upsert_points(
            UpsertPointsBuilder::new(
                "nv",
                vec![
                    PointStruct::new(1, full, Payload::new()),
                    PointStruct::new(2, only_image, Payload::new()),
                ],
            )
            .wait(true),
        )
        .await
        .unwrap();
        let p1 = get_one(&c, "nv", 1).await;
        let v = named_vectors(&p1.vectors);
        assert_eq!(
            v.keys().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from(["image".into(), "kw".into(), "text".into()])
        );
        assert_eq!(dense(&v["image"]), vec![0.1, 0.2, 0.3, 0.4]);
        assert_eq!(dense(&v["text"]), vec![1.0, 2.0, 3.0]);
        assert_eq!(sparse(&v["kw"]), (vec![1, 5, 9], vec![0.5, 0.25, 1.0]));
        let p2 = get_one(&c, "nv", 2).await;
        let v = named_vectors(&p2.vectors);
        assert_eq!(v.keys().cloned().collect::<Vec<_>>(), vec!["image".to_string()]);
        assert_eq!(dense(&v["image"]), vec![0.4, 0.3, 0.2, 0.1]);
        // Only the named vectors asked for.
        let r = c
            .get_points(
                GetPointsBuilder::new("nv", vec![1.into()])
                    .with_vectors(VectorsSelector::new(vec!["text".to_string()])),
            )
            .await
            .unwrap();
        let v = named_vectors(&r.result[0].vectors);
        assert_eq!(v.keys().cloned().collect::<Vec<_>>(), vec!["text".to_string()]);
        assert_eq!(dense(&v["text"]), vec![1.0, 2.0, 3.0]);
    });
}

#[test]
fn payload_operations_and_field_indexes() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        c.create_collection(
            CreateCollectionBuilder::new("pl").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
        )
        .await
        .unwrap();
        let points: Vec<PointStruct> = (1..=4u64)
            .map(|i| {
                PointStruct::new(
                    i,
                    vec![i as f32, 1.0],
                    payload(vec![("a", Value::from(i as i64)), ("b", Value::from("x"))]),
                )
            })
            .collect();
        c.upsert_points(UpsertPointsBuilder::new("pl", points).wait(true))
            .await
            .unwrap();

        // Set (merge), overwrite, delete keys, clear.
        let r = c
            .set_payload(
                SetPayloadPointsBuilder::new("pl", payload(vec![("c", Value::from("new"))]))
                    .points_selector(id_list(&[1, 2]))
                    .wait(true),
            )
            .await
            .unwrap();
        assert_eq!(r.result.map(|u| u.status), Some(UpdateStatus::Completed as i32));
        assert_eq!(
            get_one(&c, "pl", 1).await.payload,
            map(vec![("a", 1i64.into()), ("b", "x".into()), ("c", "new".into())])
        );
        c.overwrite_payload(
            SetPayloadPointsBuilder::new("pl", payload(vec![("z", Value::from(9i64))]))
                .points_selector(id_list(&[2]))
                .wait(true),
        )
        .await
        .unwrap();
        assert_eq!(get_one(&c, "pl", 2).await.payload, map(vec![("z", 9i64.into())]));
        c.delete_payload(
            DeletePayloadPointsBuilder::new("pl", vec!["a".to_string()])
                .points_selector(id_list(&[1, 3]))
                .wait(true),
        )
        .await
        .unwrap();
        assert_eq!(
            get_one(&c, "pl", 1).await.payload,
            map(vec![("b", "x".into()), ("c", "new".into())])
        );
        assert_eq!(get_one(&c, "pl", 3).await.payload, map(vec![("b", "x".into())]));
        c.clear_payload(
            qdrant_client::qdrant::ClearPayloadPointsBuilder::new("pl")
                .points(id_list(&[4]))
                .wait(true),
        )
        .await
        .unwrap();
        assert!(get_one(&c, "pl", 4).await.payload.is_empty());
        // Set by filter: only the points with b == "x" (1 and 3).
        c.set_payload(
            SetPayloadPointsBuilder::new("pl", payload(vec![("flag", true.into())]))
                .points_selector(Filter::must([Condition::matches("b", "x".to_string())]))
                .wait(true),
        )
        .await
        .unwrap();
        let flagged = scroll_ids(&c, "pl", Filter::must([Condition::matches("flag", true)])).await;
        assert_eq!(flagged, vec![1, 3]);
        assert_eq!(
            get_one(&c, "pl", 3).await.payload,
            map(vec![("b", "x".into()), ("flag", true.into())])
        );
        assert_eq!(get_one(&c, "pl", 2).await.payload, map(vec![("z", 9i64.into())]));

        // Field indexes: keyword and integer, visible in payload_schema with their point counts.
        c.upsert_points(
            UpsertPointsBuilder::new(
                "pl",
                vec![
                    PointStruct::new(5, vec![0.0, 1.0], payload(vec![("a", 5i64.into()), ("b", "y".into())])),
                    PointStruct::new(6, vec![0.0, 1.0], payload(vec![("a", 6i64.into())])),
                ],
            )
            .wait(true),
        )
        .await
        .unwrap();
        let r = c
            .create_field_index(CreateFieldIndexCollectionBuilder::new("pl", "b", FieldType::Keyword).wait(true))
            .await
            .unwrap();
        assert_eq!(r.result.map(|u| u.status), Some(UpdateStatus::Completed as i32));
        c.create_field_index(CreateFieldIndexCollectionBuilder::new("pl", "a", FieldType::Integer).wait(true))
            .await
            .unwrap();
        let info = c.collection_info("pl").await.unwrap().result.unwrap();
        let schema = &info.payload_schema;
        assert_eq!(
            schema.keys().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from(["a".to_string(), "b".to_string()]),
            "{schema:?}"
        );
        assert_eq!(schema["b"].data_type, PayloadSchemaType::Keyword as i32, "{schema:?}");
        assert_eq!(schema["a"].data_type, PayloadSchemaType::Integer as i32, "{schema:?}");
        // b is on 1, 3 ("x") and 5 ("y"); a only on 5 and 6 after the deletions above.
        assert_eq!(schema["b"].points, Some(3), "{schema:?}");
        assert_eq!(schema["a"].points, Some(2), "{schema:?}");
        // Indexed filters answer the same.
        assert_eq!(
            scroll_ids(&c, "pl", Filter::must([Condition::matches("b", "x".to_string())])).await,
            vec![1, 3]
        );
        assert_eq!(
            scroll_ids(
                &c,
                "pl",
                Filter::must([Condition::range(
                    "a",
                    Range {
                        gte: Some(6.0),
                        ..Default::default()
                    }
                )])
            )
            .await,
            vec![6]
        );
        c.delete_field_index(DeleteFieldIndexCollectionBuilder::new("pl", "b").wait(true))
            .await
            .unwrap();
        let info = c.collection_info("pl").await.unwrap().result.unwrap();
        assert_eq!(
            info.payload_schema.keys().cloned().collect::<Vec<_>>(),
            vec!["a".to_string()],
            "{:?}",
            info.payload_schema
        );
    });
}

/// The payload of filter-test point `i`.
fn city_of(i: u64) -> &'static str {
    ["London", "Berlin", "Paris", "Oslo"][(i % 4) as usize]
}

/// `tags`: missing for i % 5 == 0, an empty list for i % 5 == 1, else one tag.
fn tags_of(i: u64) -> Option<Vec<String>> {
    match i % 5 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(vec![format!("t{}", i % 3)]),
    }
}

fn range(gte: Option<f64>, lt: Option<f64>) -> Range {
    Range {
        gte,
        lt,
        ..Default::default()
    }
}

/// A named filter and the predicate on point ids it must select exactly.
type FilterCase = (&'static str, Filter, Box<dyn Fn(u64) -> bool>);

/// Each filter with the predicate it must select exactly.
fn filter_cases() -> Vec<FilterCase> {
    let kw = |c: &str| Condition::matches("city", c.to_string());
    vec![
        (
            "match keyword",
            Filter::must([kw("London")]),
            Box::new(|i| city_of(i) == "London"),
        ),
        (
            "match any",
            Filter::must([Condition::matches(
                "city",
                vec!["Berlin".to_string(), "Paris".to_string()],
            )]),
            Box::new(|i| matches!(city_of(i), "Berlin" | "Paris")),
        ),
        (
            "match integer",
            Filter::must([Condition::matches("n", 7i64)]),
            Box::new(|i| i == 7),
        ),
        (
            "range",
            Filter::must([Condition::range("n", range(Some(10.0), Some(20.0)))]),
            Box::new(|i| (10..20).contains(&i)),
        ),
        (
            "must + must_not",
            Filter {
                must: vec![Condition::range("n", range(Some(5.0), None))],
                must_not: vec![kw("London")],
                ..Default::default()
            },
            Box::new(|i| i >= 5 && city_of(i) != "London"),
        ),
        (
            "should",
            Filter::should([kw("Oslo"), Condition::has_id([0u64, 1, 2])]),
            Box::new(|i| city_of(i) == "Oslo" || i <= 2),
        ),
        (
            "is_empty",
            Filter::must([Condition::is_empty("tags")]),
            Box::new(|i| tags_of(i).is_none_or(|t| t.is_empty())),
        ),
        (
            "must_not is_empty",
            Filter::must_not([Condition::is_empty("tags")]),
            Box::new(|i| tags_of(i).is_some_and(|t| !t.is_empty())),
        ),
        (
            "has_id + match",
            Filter::must([Condition::has_id([3u64, 7, 12, 100]), kw("Oslo")]),
            Box::new(|i| [3, 7].contains(&i)),
        ),
        (
            "nested filter as condition",
            Filter::must([Condition::from(Filter::should([kw("London"), kw("Paris")]))]),
            Box::new(|i| matches!(city_of(i), "London" | "Paris")),
        ),
        (
            "all three clauses",
            Filter {
                must: vec![
                    Condition::range("n", range(None, Some(30.0))),
                    Condition::matches("city", vec!["London".to_string(), "Oslo".to_string()]),
                ],
                must_not: vec![Condition::has_id([4u64, 8])],
                should: vec![
                    Condition::is_empty("tags"),
                    Condition::range("n", range(Some(20.0), None)),
                ],
                ..Default::default()
            },
            Box::new(|i| {
                i < 30
                    && matches!(city_of(i), "London" | "Oslo")
                    && ![4, 8].contains(&i)
                    && (tags_of(i).is_none_or(|t| t.is_empty()) || i >= 20)
            }),
        ),
    ]
}

#[test]
fn filters_select_exactly() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        c.create_collection(
            CreateCollectionBuilder::new("f").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
        )
        .await
        .unwrap();
        const N: u64 = 40;
        let points: Vec<PointStruct> = (0..N)
            .map(|i| {
                let mut p = vec![("n", Value::from(i as i64)), ("city", Value::from(city_of(i)))];
                if let Some(t) = tags_of(i) {
                    p.push(("tags", Value::from(t)));
                }
                PointStruct::new(i, vec![1.0, i as f32], payload(p))
            })
            .collect();
        c.upsert_points(UpsertPointsBuilder::new("f", points).wait(true))
            .await
            .unwrap();

        // Without payload indexes, then with them: the same answers.
        for indexed in [false, true] {
            if indexed {
                c.create_field_index(
                    CreateFieldIndexCollectionBuilder::new("f", "city", FieldType::Keyword).wait(true),
                )
                .await
                .unwrap();
                c.create_field_index(CreateFieldIndexCollectionBuilder::new("f", "n", FieldType::Integer).wait(true))
                    .await
                    .unwrap();
            }
            for (what, filter, pred) in filter_cases() {
                let want: Vec<u64> = (0..N).filter(|i| pred(*i)).collect();
                assert!(!want.is_empty() && want.len() < N as usize, "{what}: degenerate case");
                let got = scroll_ids(&c, "f", filter.clone()).await;
                assert_eq!(got, want, "scroll, {what}, indexed={indexed}");
                assert_eq!(
                    exact_count(&c, "f", Some(filter.clone())).await,
                    want.len() as u64,
                    "count, {what}, indexed={indexed}"
                );
                // Search with the filter returns only matching points, best (largest n) first.
                let r = c
                    .search_points(SearchPointsBuilder::new("f", vec![0.0, 1.0], 5).filter(filter))
                    .await
                    .unwrap();
                let best: Vec<u64> = want.iter().rev().take(5).copied().collect();
                assert_eq!(ids_of(&r.result), best, "search, {what}, indexed={indexed}");
            }
        }
    });
}

/// Upserts 500 random vectors (dim 16) under `metric` and checks exact search, query and the
/// HNSW recall against the brute force.
async fn search_against_brute_force(c: &Qdrant, metric: Metric) {
    let (name, distance, seed) = match metric {
        Metric::Cosine => ("cos", Distance::Cosine, 11),
        Metric::Euclid => ("euc", Distance::Euclid, 12),
    };
    // A low indexing threshold (KB) so that the 32 KB of vectors get an HNSW graph, as in Qdrant.
    c.create_collection(
        CreateCollectionBuilder::new(name)
            .vectors_config(VectorParamsBuilder::new(16, distance))
            .optimizers_config(OptimizersConfigDiffBuilder::default().indexing_threshold(10)),
    )
    .await
    .unwrap();
    let data = vectors(500, 16, seed);
    upsert_plain(c, name, &data).await;
    assert_eq!(exact_count(c, name, None).await, 500);
    // The approximate searches below must walk the graph: wait until every vector is indexed.
    common::grpc::eventually(
        Duration::from_secs(60),
        &format!("{name}: 500 indexed vectors"),
        || async {
            let info = c.collection_info(name).await.map_err(|e| e.to_string())?;
            let indexed = info.result.and_then(|i| i.indexed_vectors_count);
            (indexed == Some(500))
                .then_some(())
                .ok_or(format!("indexed_vectors_count {indexed:?}"))
        },
    )
    .await;
    let queries = vectors(20, 16, seed + 100);
    let mut found = 0;
    for (qi, q) in queries.iter().enumerate() {
        let want = ranking(metric, &data, q);
        let what = format!("{name} query {qi}");
        let r = c
            .search_points(
                SearchPointsBuilder::new(name, q.clone(), 10)
                    .params(SearchParamsBuilder::default().exact(true))
                    .with_payload(true),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking(&format!("search exact, {what}"), &r.result, &want, 10);
        for h in &r.result {
            assert_eq!(h.payload.get("n").and_then(int), Some(num_id(&h.id) as i64), "{what}");
        }
        let r = c
            .query(
                QueryPointsBuilder::new(name)
                    .query(q.clone())
                    .limit(10)
                    .params(SearchParamsBuilder::default().exact(true)),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking(&format!("query exact, {what}"), &r.result, &want, 10);
        let r = c
            .query(
                QueryPointsBuilder::new(name)
                    .query(q.clone())
                    .limit(10)
                    .offset(5)
                    .params(SearchParamsBuilder::default().exact(true)),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking(&format!("query exact offset 5, {what}"), &r.result, &want[5..], 10);
        // Approximate (HNSW) search.
        let r = c
            .search_points(SearchPointsBuilder::new(name, q.clone(), 10))
            .await
            .unwrap();
        assert_eq!(r.result.len(), 10, "{what}");
        let top: BTreeSet<u64> = want[..10].iter().map(|w| w.0).collect();
        found += ids_of(&r.result).iter().filter(|id| top.contains(id)).count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    println!("{name}: HNSW recall@10 = {recall}");
    assert!(recall >= 0.9, "{name}: HNSW recall@10 {recall} < 0.9");
}

#[test]
fn search_matches_brute_force() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        search_against_brute_force(&c, Metric::Cosine).await;
        search_against_brute_force(&c, Metric::Euclid).await;
    });
}

fn sigmoid(x: f64) -> f64 {
    0.5 * (x / (1.0 + x.abs()) + 1.0)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Cosine ranking of `normed` (already normalised) against the scoring function, best first,
/// without `exclude`.
fn rank_by(normed: &[Vec<f64>], exclude: &[u64], score: impl Fn(&[f64]) -> f64) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> = normed
        .iter()
        .enumerate()
        .filter(|(i, _)| !exclude.contains(&(*i as u64)))
        .map(|(i, v)| (i as u64, score(v)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

fn batch_ids(results: &[qdrant_client::qdrant::BatchResult]) -> Vec<Vec<u64>> {
    results.iter().map(|b| ids_of(&b.result)).collect()
}

#[test]
fn batches_query_and_recommend() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        let mut cfg = VectorsConfigBuilder::default();
        cfg.add_named_vector_params("a", VectorParamsBuilder::new(8, Distance::Cosine));
        cfg.add_named_vector_params("b", VectorParamsBuilder::new(8, Distance::Euclid));
        c.create_collection(CreateCollectionBuilder::new("q").vectors_config(cfg))
            .await
            .unwrap();
        const N: usize = 200;
        let va = vectors(N, 8, 21);
        let vb = vectors(N, 8, 22);
        let points: Vec<PointStruct> = (0..N)
            .map(|i| {
                PointStruct::new(
                    i as u64,
                    NamedVectors::default()
                        .add_vector("a", va[i].clone())
                        .add_vector("b", vb[i].clone()),
                    payload(vec![("n", Value::from(i as i64)), ("even", Value::from(i % 2 == 0))]),
                )
            })
            .collect();
        c.upsert_points(UpsertPointsBuilder::new("q", points).wait(true))
            .await
            .unwrap();
        let exact = || SearchParamsBuilder::default().exact(true);
        let even = Filter::must([Condition::matches("even", true)]);
        let qa = vectors(1, 8, 31).remove(0);
        let qb = vectors(1, 8, 32).remove(0);
        let want_a = ranking(Metric::Cosine, &va, &qa);
        let want_b = ranking(Metric::Euclid, &vb, &qb);
        let want_b_even: Vec<(u64, f64)> = want_b.iter().copied().filter(|(i, _)| i % 2 == 0).collect();

        // search_batch: one search per named vector, the second filtered.
        let r = c
            .search_batch_points(SearchBatchPointsBuilder::new(
                "q",
                vec![
                    SearchPointsBuilder::new("q", qa.clone(), 10)
                        .vector_name("a")
                        .params(exact())
                        .build(),
                    SearchPointsBuilder::new("q", qb.clone(), 7)
                        .vector_name("b")
                        .filter(even.clone())
                        .params(exact())
                        .build(),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(r.result.len(), 2);
        common::grpc::assert_ranking("search_batch a", &r.result[0].result, &want_a, 10);
        common::grpc::assert_ranking("search_batch b even", &r.result[1].result, &want_b_even, 7);

        // query: nearest by vector `using` a named vector, with a filter, by point id.
        let r = c
            .query(
                QueryPointsBuilder::new("q")
                    .query(qb.clone())
                    .using("b")
                    .limit(10)
                    .params(exact()),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking("query using b", &r.result, &want_b, 10);
        let r = c
            .query(
                QueryPointsBuilder::new("q")
                    .query(qb.clone())
                    .using("b")
                    .filter(even.clone())
                    .limit(10)
                    .params(exact()),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking("query using b, even", &r.result, &want_b_even, 10);
        // By id: the point's own vector, the point itself excluded.
        let by_id: Vec<(u64, f64)> = ranking(Metric::Euclid, &vb, &vb[5])
            .into_iter()
            .filter(|(i, _)| *i != 5)
            .collect();
        let r = c
            .query(
                QueryPointsBuilder::new("q")
                    .query(PointId::from(5))
                    .using("b")
                    .limit(10)
                    .params(exact()),
            )
            .await
            .unwrap();
        common::grpc::assert_ranking("query by id 5 using b", &r.result, &by_id, 10);

        // query_batch.
        let r = c
            .query_batch(QueryBatchPointsBuilder::new(
                "q",
                vec![
                    QueryPointsBuilder::new("q")
                        .query(qa.clone())
                        .using("a")
                        .limit(5)
                        .params(exact())
                        .build(),
                    QueryPointsBuilder::new("q")
                        .query(PointId::from(5))
                        .using("b")
                        .limit(10)
                        .params(exact())
                        .build(),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(r.result.len(), 2);
        common::grpc::assert_ranking("query_batch a", &r.result[0].result, &want_a, 5);
        common::grpc::assert_ranking("query_batch by id", &r.result[1].result, &by_id, 10);

        // recommend on the cosine vector (stored normalised).
        let normed: Vec<Vec<f64>> = va.iter().map(|v| common::grpc::normalized(v)).collect();
        // average_vector: avg(pos) + (avg(pos) - avg(neg)), examples excluded.
        let target: Vec<f64> = (0..8)
            .map(|d| 2.0 * (normed[1][d] + normed[2][d]) / 2.0 - normed[3][d])
            .collect();
        let target = {
            let n = dot(&target, &target).sqrt();
            target.iter().map(|x| x / n).collect::<Vec<_>>()
        };
        let want_avg = rank_by(&normed, &[1, 2, 3], |v| dot(v, &target));
        let avg_req = RecommendPointsBuilder::new("q", 10)
            .add_positive(1u64)
            .add_positive(2u64)
            .add_negative(3u64)
            .using("a")
            .strategy(RecommendStrategy::AverageVector)
            .params(exact());
        let r = c.recommend(avg_req.clone()).await.unwrap();
        common::grpc::assert_ranking("recommend average_vector", &r.result, &want_avg, 10);
        // best_score: the best positive similarity if above the best negative, else minus the
        // negative one, both through Qdrant's sigmoid.
        let best = |v: &[f64]| {
            let pos = dot(v, &normed[10]).max(dot(v, &normed[11]));
            let neg = dot(v, &normed[12]);
            if pos > neg {
                sigmoid(pos)
            } else {
                -sigmoid(neg)
            }
        };
        let want_best = rank_by(&normed, &[10, 11, 12], best);
        let best_req = RecommendPointsBuilder::new("q", 10)
            .add_positive(10u64)
            .add_positive(11u64)
            .add_negative(12u64)
            .using("a")
            .strategy(RecommendStrategy::BestScore)
            .params(exact());
        let r = c.recommend(best_req.clone()).await.unwrap();
        common::grpc::assert_ranking("recommend best_score", &r.result, &want_best, 10);
        // With a filter, only even points.
        let r = c
            .recommend(best_req.clone().filter(even.clone()).limit(5))
            .await
            .unwrap();
        let want_best_even: Vec<(u64, f64)> = want_best.iter().copied().filter(|(i, _)| i % 2 == 0).collect();
        common::grpc::assert_ranking("recommend best_score even", &r.result, &want_best_even, 5);

        // recommend_batch answers each request as alone.
        let r = c
            .recommend_batch(RecommendBatchPointsBuilder::new(
                "q",
                vec![avg_req.build(), best_req.build()],
            ))
            .await
            .unwrap();
        assert_eq!(r.result.len(), 2);
        assert_eq!(
            batch_ids(&r.result),
            vec![
                want_avg[..10].iter().map(|w| w.0).collect::<Vec<_>>(),
                want_best[..10].iter().map(|w| w.0).collect::<Vec<_>>()
            ]
        );
        common::grpc::assert_ranking("recommend_batch average", &r.result[0].result, &want_avg, 10);
        common::grpc::assert_ranking("recommend_batch best", &r.result[1].result, &want_best, 10);
    });
}

fn scored_ids_sorted(points: &[ScoredPoint]) -> Vec<u64> {
    let mut ids = ids_of(points);
    ids.sort_unstable();
    ids
}

#[test]
fn vector_and_point_updates_and_batches() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        let mut cfg = VectorsConfigBuilder::default();
        cfg.add_named_vector_params("a", VectorParamsBuilder::new(3, Distance::Dot));
        cfg.add_named_vector_params("b", VectorParamsBuilder::new(2, Distance::Dot));
        c.create_collection(CreateCollectionBuilder::new("u").vectors_config(cfg))
            .await
            .unwrap();
        let a_of = |i: u64| vec![i as f32, 0.0, 1.0];
        let b_of = |i: u64| vec![0.0, i as f32];
        let points: Vec<PointStruct> = (1..=6u64)
            .map(|i| {
                PointStruct::new(
                    i,
                    NamedVectors::default()
                        .add_vector("a", a_of(i))
                        .add_vector("b", b_of(i)),
                    payload(vec![("n", Value::from(i as i64))]),
                )
            })
            .collect();
        c.upsert_points(UpsertPointsBuilder::new("u", points).wait(true))
            .await
            .unwrap();

        // update_vectors replaces only the named vector given.
        let r = c
            .update_vectors(
                UpdatePointVectorsBuilder::new(
                    "u",
                    vec![PointVectors {
                        id: Some(1.into()),
                        vectors: Some(HashMap::from([("a".to_string(), vec![9.0, 9.0, 9.0])]).into()),
                    }],
                )
                .wait(true),
            )
            .await
            .unwrap();
        assert_eq!(r.result.map(|u| u.status), Some(UpdateStatus::Completed as i32));
        let v = named_vectors(&get_one(&c, "u", 1).await.vectors);
        assert_eq!(dense(&v["a"]), vec![9.0, 9.0, 9.0]);
        assert_eq!(dense(&v["b"]), b_of(1));

        // delete_vectors removes one named vector of a point.
        c.delete_vectors(
            DeletePointVectorsBuilder::new("u")
                .points_selector(id_list(&[2]))
                .vectors(VectorsSelector {
                    names: vec!["b".into()],
                })
                .wait(true),
        )
        .await
        .unwrap();
        let v = named_vectors(&get_one(&c, "u", 2).await.vectors);
        assert_eq!(v.keys().cloned().collect::<Vec<_>>(), vec!["a".to_string()]);
        assert_eq!(dense(&v["a"]), a_of(2));
        // A search on b no longer finds point 2.
        let r = c
            .query(QueryPointsBuilder::new("u").query(vec![0.0, 1.0]).using("b").limit(10))
            .await
            .unwrap();
        assert_eq!(scored_ids_sorted(&r.result), vec![1, 3, 4, 5, 6]);

        // Delete by ids, then by filter.
        c.delete_points(DeletePointsBuilder::new("u").points(id_list(&[3])).wait(true))
            .await
            .unwrap();
        let r = c.get_points(GetPointsBuilder::new("u", vec![3.into()])).await.unwrap();
        assert!(r.result.is_empty(), "{:?}", r.result);
        assert_eq!(exact_count(&c, "u", None).await, 5);
        c.delete_points(
            DeletePointsBuilder::new("u")
                .points(Filter::must([Condition::range("n", range(Some(5.0), None))]))
                .wait(true),
        )
        .await
        .unwrap();
        let all = scroll_ids(&c, "u", Filter::default()).await;
        assert_eq!(all, vec![1, 2, 4]);

        // update_batch: several operations applied in order.
        let ops = vec![
            PointsUpdateOperation {
                operation: Some(Operation::Upsert(PointStructList {
                    points: vec![PointStruct::new(
                        10,
                        NamedVectors::default()
                            .add_vector("a", a_of(10))
                            .add_vector("b", b_of(10)),
                        payload(vec![("n", Value::from(10i64))]),
                    )],
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::SetPayload(SetPayload {
                    payload: map(vec![("tag", "x".into())]),
                    points_selector: Some(selector(&[1, 10])),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::OverwritePayload(OverwritePayload {
                    payload: map(vec![("only", 1i64.into())]),
                    points_selector: Some(selector(&[2])),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeletePayload(DeletePayload {
                    keys: vec!["n".into()],
                    points_selector: Some(selector(&[1])),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::UpdateVectors(UpdateVectors {
                    points: vec![PointVectors {
                        id: Some(2.into()),
                        vectors: Some(HashMap::from([("b".to_string(), vec![7.0, 7.0])]).into()),
                    }],
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeleteVectors(DeleteVectors {
                    points_selector: Some(selector(&[10])),
                    vectors: Some(VectorsSelector {
                        names: vec!["b".into()],
                    }),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeletePoints(DeletePoints {
                    points: Some(selector(&[4])),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::ClearPayload(ClearPayload {
                    points: Some(selector(&[2])),
                    ..Default::default()
                })),
            },
        ];
        let n_ops = ops.len();
        let r = c
            .update_points_batch(UpdateBatchPointsBuilder::new("u", ops).wait(true))
            .await
            .unwrap();
        assert_eq!(r.result.len(), n_ops, "{:?}", r.result);
        for (i, u) in r.result.iter().enumerate() {
            assert_eq!(u.status, UpdateStatus::Completed as i32, "operation {i}: {u:?}");
        }
        assert_eq!(scroll_ids(&c, "u", Filter::default()).await, vec![1, 2, 10]);
        let p1 = get_one(&c, "u", 1).await;
        assert_eq!(p1.payload, map(vec![("tag", "x".into())]));
        let p2 = get_one(&c, "u", 2).await;
        assert!(p2.payload.is_empty(), "{:?}", p2.payload);
        let v = named_vectors(&p2.vectors);
        assert_eq!(dense(&v["a"]), a_of(2));
        assert_eq!(dense(&v["b"]), vec![7.0, 7.0]);
        let p10 = get_one(&c, "u", 10).await;
        assert_eq!(p10.payload, map(vec![("n", 10i64.into()), ("tag", "x".into())]));
        let v = named_vectors(&p10.vectors);
        assert_eq!(v.keys().cloned().collect::<Vec<_>>(), vec!["a".to_string()]);
        assert_eq!(dense(&v["a"]), a_of(10));
    });
}

#[test]
fn errors_carry_qdrant_status_codes() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        // Unknown collection: NotFound on every kind of call.
        let msg = expect_code("info", c.collection_info("missing").await, Code::NotFound);
        assert!(msg.contains("missing"), "{msg}");
        expect_code(
            "upsert",
            c.upsert_points(UpsertPointsBuilder::new(
                "missing",
                vec![PointStruct::new(1, vec![1.0, 2.0], Payload::new())],
            ))
            .await,
            Code::NotFound,
        );
        expect_code(
            "search",
            c.search_points(SearchPointsBuilder::new("missing", vec![1.0, 2.0], 3))
                .await,
            Code::NotFound,
        );
        expect_code(
            "query",
            c.query(QueryPointsBuilder::new("missing").query(vec![1.0, 2.0])).await,
            Code::NotFound,
        );
        expect_code(
            "scroll",
            c.scroll(ScrollPointsBuilder::new("missing")).await,
            Code::NotFound,
        );
        expect_code(
            "count",
            c.count(CountPointsBuilder::new("missing")).await,
            Code::NotFound,
        );
        expect_code(
            "get",
            c.get_points(GetPointsBuilder::new("missing", vec![1.into()])).await,
            Code::NotFound,
        );
        expect_code(
            "update collection",
            c.update_collection(
                UpdateCollectionBuilder::new("missing")
                    .optimizers_config(OptimizersConfigDiffBuilder::default().indexing_threshold(10)),
            )
            .await,
            Code::NotFound,
        );
        expect_code(
            "field index",
            c.create_field_index(CreateFieldIndexCollectionBuilder::new(
                "missing",
                "k",
                FieldType::Keyword,
            ))
            .await,
            Code::NotFound,
        );

        c.create_collection(
            CreateCollectionBuilder::new("e").vectors_config(VectorParamsBuilder::new(4, Distance::Dot)),
        )
        .await
        .unwrap();
        c.upsert_points(
            UpsertPointsBuilder::new("e", vec![PointStruct::new(1, vec![1.0, 2.0, 3.0, 4.0], Payload::new())])
                .wait(true),
        )
        .await
        .unwrap();
        // Wrong vector dimension on write and on search.
        let msg = expect_code(
            "upsert dim 3",
            c.upsert_points(
                UpsertPointsBuilder::new("e", vec![PointStruct::new(2, vec![1.0, 2.0, 3.0], Payload::new())])
                    .wait(true),
            )
            .await,
            Code::InvalidArgument,
        );
        assert!(msg.contains("expected dim: 4, got 3"), "{msg}");
        let msg = expect_code(
            "search dim 3",
            c.search_points(SearchPointsBuilder::new("e", vec![1.0, 2.0, 3.0], 3))
                .await,
            Code::InvalidArgument,
        );
        assert!(msg.contains("expected dim: 4, got 3"), "{msg}");
        expect_code(
            "query dim 5",
            c.query(QueryPointsBuilder::new("e").query(vec![1.0; 5])).await,
            Code::InvalidArgument,
        );
        // The failed write changed nothing.
        assert_eq!(exact_count(&c, "e", None).await, 1);
        // limit 0.
        expect_code(
            "search limit 0",
            c.search_points(SearchPointsBuilder::new("e", vec![1.0; 4], 0)).await,
            Code::InvalidArgument,
        );
        expect_code(
            "recommend limit 0",
            c.recommend(RecommendPointsBuilder::new("e", 0).add_positive(1u64))
                .await,
            Code::InvalidArgument,
        );
        // An unknown named vector.
        expect_code(
            "query using unknown vector",
            c.query(QueryPointsBuilder::new("e").query(vec![1.0; 4]).using("nope"))
                .await,
            Code::InvalidArgument,
        );
        // Creating with a zero-sized vector is rejected; the collection does not appear.
        expect_code(
            "create size 0",
            c.create_collection(
                CreateCollectionBuilder::new("z").vectors_config(VectorParamsBuilder::new(0, Distance::Dot)),
            )
            .await,
            Code::InvalidArgument,
        );
        assert!(!c.collection_exists("z").await.unwrap());
        // An update batch without operations (Qdrant validates `operations` length >= 1).
        expect_code(
            "empty update batch",
            c.update_points_batch(UpdateBatchPointsBuilder::new("e", Vec::<PointsUpdateOperation>::new()))
                .await,
            Code::InvalidArgument,
        );
    });
}

#[test]
fn api_keys_guard_every_call_but_health() {
    let s = Server::start_with(&[
        ("QDRANT__SERVICE__API_KEY", "secret"),
        ("QDRANT__SERVICE__READ_ONLY_API_KEY", "ro"),
    ]);
    let url = s.grpc_url.clone();
    run(LIMIT, async move {
        // HealthCheck needs no key (connect polls it without one).
        let anon = connect(&url, None).await;
        let full = connect(&url, Some("secret")).await;
        let ro = connect(&url, Some("ro")).await;
        let wrong = connect(&url, Some("not-the-key")).await;
        let health = anon.health_check().await.expect("health without key");
        assert!(!health.version.is_empty(), "{health:?}");

        // Standard health service without a key.
        let mut hc = common::grpc::health_client(&url).await;
        let r = hc
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .expect("grpc.health.v1.Health/Check without key");
        assert_eq!(
            r.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        // No key and a wrong key: Unauthenticated.
        expect_code("list without key", anon.list_collections().await, Code::Unauthenticated);
        expect_code(
            "list with wrong key",
            wrong.list_collections().await,
            Code::Unauthenticated,
        );
        expect_code(
            "create without key",
            anon.create_collection(
                CreateCollectionBuilder::new("k").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
            )
            .await,
            Code::Unauthenticated,
        );
        expect_code(
            "count with wrong key",
            wrong.count(CountPointsBuilder::new("k")).await,
            Code::Unauthenticated,
        );

        // The full key works.
        full.create_collection(
            CreateCollectionBuilder::new("k").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
        )
        .await
        .expect("create with the full key");
        full.upsert_points(
            UpsertPointsBuilder::new(
                "k",
                vec![
                    PointStruct::new(1, vec![1.0, 0.0], Payload::new()),
                    PointStruct::new(2, vec![0.0, 1.0], Payload::new()),
                ],
            )
            .wait(true),
        )
        .await
        .expect("upsert with the full key");

        // The read-only key reads...
        assert!(ro.collection_exists("k").await.expect("exists with ro"));
        assert_eq!(ro.list_collections().await.expect("list with ro").collections.len(), 1);
        ro.collection_info("k").await.expect("info with ro");
        let r = ro
            .search_points(SearchPointsBuilder::new("k", vec![1.0, 0.0], 2))
            .await
            .expect("search with ro");
        assert_eq!(ids_of(&r.result), vec![1, 2]);
        let r = ro
            .query(QueryPointsBuilder::new("k").query(vec![0.0, 1.0]).limit(1))
            .await
            .expect("query with ro");
        assert_eq!(ids_of(&r.result), vec![2]);
        let r = ro.scroll(ScrollPointsBuilder::new("k")).await.expect("scroll with ro");
        assert_eq!(retrieved_ids(&r.result), vec![1, 2]);
        let r = ro
            .count(CountPointsBuilder::new("k").exact(true))
            .await
            .expect("count with ro");
        assert_eq!(r.result.map(|c| c.count), Some(2));
        ro.get_points(GetPointsBuilder::new("k", vec![1.into()]))
            .await
            .expect("get with ro");

        // ...but cannot write: PermissionDenied, and nothing changes.
        expect_code(
            "upsert with ro",
            ro.upsert_points(
                UpsertPointsBuilder::new("k", vec![PointStruct::new(3, vec![1.0, 1.0], Payload::new())]).wait(true),
            )
            .await,
            Code::PermissionDenied,
        );
        expect_code(
            "delete points with ro",
            ro.delete_points(DeletePointsBuilder::new("k").points(id_list(&[1])).wait(true))
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            "create with ro",
            ro.create_collection(
                CreateCollectionBuilder::new("k2").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
            )
            .await,
            Code::PermissionDenied,
        );
        expect_code(
            "delete collection with ro",
            ro.delete_collection("k").await,
            Code::PermissionDenied,
        );
        let r = full.count(CountPointsBuilder::new("k").exact(true)).await.unwrap();
        assert_eq!(r.result.map(|c| c.count), Some(2));
        assert!(full.collection_exists("k").await.unwrap());
        assert!(!full.collection_exists("k2").await.unwrap());
    });
}

#[test]
fn health_services_answer() {
    let s = Server::start();
    let (status, root) = common::ureq_get(&s.url).expect("REST root");
    assert_eq!(status, 200, "{root}");
    let root: serde_json::Value = serde_json::from_str(&root).expect("REST root JSON");
    let url = s.grpc_url.clone();
    run(LIMIT, async move {
        let c = connect(&url, None).await;
        let h = c.health_check().await.unwrap();
        // The same identity as REST's root.
        assert_eq!(Some(h.title.as_str()), root["title"].as_str(), "{h:?} vs {root}");
        assert_eq!(Some(h.version.as_str()), root["version"].as_str(), "{h:?} vs {root}");

        let mut hc = common::grpc::health_client(&url).await;
        let r = hc
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .expect("grpc.health.v1.Health/Check");
        assert_eq!(
            r.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        // An unknown service name is NotFound, per the health-checking protocol.
        let err = hc
            .check(tonic_health::pb::HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .expect_err("unknown service");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(!h.title.is_empty() && !h.version.is_empty(), "{h:?}");
    });
}

#[test]
fn snapshots_are_created_listed_and_deleted() {
    let s = Server::start();
    run(LIMIT, async {
        let c = connect(&s.grpc_url, None).await;
        c.create_collection(
            CreateCollectionBuilder::new("snap").vectors_config(VectorParamsBuilder::new(4, Distance::Dot)),
        )
        .await
        .unwrap();
        let points: Vec<PointStruct> = vectors(50, 4, 3)
            .into_iter()
            .enumerate()
            .map(|(i, v)| PointStruct::new(i as u64, v, payload(vec![("i", Value::from(i as i64))])))
            .collect();
        c.upsert_points(UpsertPointsBuilder::new("snap", points).wait(true))
            .await
            .unwrap();

        let created = c.create_snapshot("snap").await.unwrap().snapshot_description.unwrap();
        assert!(
            created.name.starts_with("snap-") && created.name.ends_with(".snapshot"),
            "{created:?}"
        );
        assert!(created.size > 0 && created.creation_time.is_some());
        let file = s.dir.path().join("snapshots/snap").join(&created.name);
        assert_eq!(std::fs::metadata(&file).unwrap().len() as i64, created.size);
        let checksum = created.checksum.clone().unwrap();
        assert_eq!(checksum.len(), 64);
        let listed = c.list_snapshots("snap").await.unwrap().snapshot_descriptions;
        assert_eq!(
            listed.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            vec![created.name.clone()]
        );
        assert_eq!(listed[0].checksum.as_deref(), Some(checksum.as_str()));

        expect_code(
            "snapshot of a missing collection",
            c.create_snapshot("missing").await,
            Code::NotFound,
        );
        let missing = qdrant_client::qdrant::DeleteSnapshotRequestBuilder::new("snap", "nope.snapshot");
        expect_code(
            "delete a missing snapshot",
            c.delete_snapshot(missing).await,
            Code::NotFound,
        );
        let delete = qdrant_client::qdrant::DeleteSnapshotRequestBuilder::new("snap", created.name.clone());
        c.delete_snapshot(delete).await.unwrap();
        assert!(c.list_snapshots("snap").await.unwrap().snapshot_descriptions.is_empty());
        assert!(!file.exists());

        let full = c.create_full_snapshot().await.unwrap().snapshot_description.unwrap();
        assert!(full.name.starts_with("full-snapshot-"), "{full:?}");
        let listed = c.list_full_snapshots().await.unwrap().snapshot_descriptions;
        assert_eq!(listed.len(), 1);
        c.delete_full_snapshot(full.name.clone()).await.unwrap();
        assert!(c.list_full_snapshots().await.unwrap().snapshot_descriptions.is_empty());
    });
}
