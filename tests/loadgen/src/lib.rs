//! qbench: deterministic datasets, a Qdrant REST/gRPC load generator and in-process ANN baselines.
//!
//! Modules: `rng`/`gen` (latent-mixture data), `gt` (exact ground truth), `vecio`
//! (.fvecs/.ivecs), `dataset` (cache), `client` (the server calls, one trait over the
//! transports `rest` and `grpc`), `upload`/`search` (load, transport-agnostic), `baseline`
//! (in-process indexes behind one trait), `hybrid` (dense + sparse workload), `stats`, `procstat`, `report`.

pub mod baseline;
pub mod cli;
pub mod client;
pub mod commands;
pub mod dataset;
pub mod gen;
pub mod grpc;
pub mod gt;
pub mod hybrid;
pub mod procstat;
pub mod report;
pub mod rest;
pub mod rng;
pub mod search;
pub mod stats;
pub mod upload;
pub mod vecio;
