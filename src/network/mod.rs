//! Network analysis: the graph of nodes and arcs, kept in memory above whichever source serves.
//!
//! `Network` holds the current graph behind an `Arc`; a rebuild makes a whole new graph and
//! swaps the pointer, so readers never see half a graph and never wait on a rebuild.

pub mod graph;
pub mod routes;

use crate::config::Config;
use crate::error::AppResult;
use crate::source::Source;
use bytes::Bytes;
use graph::Graph;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The layer names the graph is built from.
pub const NODE_LAYER: &str = "nodes";
/// See [`NODE_LAYER`].
pub const ARC_LAYER: &str = "arcs";

/// Bytes of JSON answers kept per instance (answers that depend on the graph only).
const ANSWER_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The current graph, swapped whole on rebuild, and the answers computed from it.
pub struct Network {
    current: RwLock<Arc<Graph>>,
    generation: AtomicU64,
    answers: Cache<String, Bytes>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            current: RwLock::default(),
            generation: AtomicU64::new(0),
            answers: Cache::builder()
                .max_capacity(ANSWER_CACHE_BYTES)
                .weigher(|k: &String, v: &Bytes| (k.len() + v.len()).try_into().unwrap_or(u32::MAX))
                .build(),
        }
    }
}

impl Network {
    /// The graph as it is now; cheap (one `Arc` clone).
    pub fn graph(&self) -> Arc<Graph> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The JSON answer for `key` (a request URI) on the current graph: computed once per graph
    /// by `make`, then served from memory until the graph is rebuilt.
    pub fn answer(
        &self,
        key: &str,
        make: impl FnOnce(&Graph) -> AppResult<serde_json::Value>,
    ) -> AppResult<Bytes> {
        let graph = self.graph();
        let key = format!("{}|{key}", graph.generation);
        if let Some(hit) = self.answers.get(&key) {
            return Ok(hit);
        }
        let bytes = Bytes::from(serde_json::to_vec(&make(&graph)?).map_err(|e| {
            crate::error::AppError::Internal(format!("cannot serialise an answer: {e}"))
        })?);
        self.answers.insert(key, bytes.clone());
        Ok(bytes)
    }

    /// Reads the node and arc layers from the source and swaps in a new graph.
    pub async fn rebuild(&self, source: &dyn Source, config: &Config) -> AppResult<Arc<Graph>> {
        let (Some(nodes), Some(arcs)) = (config.layer(NODE_LAYER), config.layer(ARC_LAYER)) else {
            return Ok(self.graph());
        };
        let node_rows = source.rows(nodes).await?;
        let arc_rows = source.rows(arcs).await?;
        let mut graph = Graph::build(node_rows, arc_rows);
        graph.generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let graph = Arc::new(graph);
        if !graph.dangling.is_empty() {
            let examples: Vec<String> = graph
                .dangling
                .iter()
                .take(5)
                .map(|(arc, node)| format!("{arc} (no node {node})"))
                .collect();
            tracing::warn!(
                count = graph.dangling.len(),
                examples = %examples.join(", "),
                "arcs whose ends are not known nodes were left out of the graph"
            );
        }
        tracing::info!(
            nodes = graph.nodes.len(),
            arcs = graph.arcs.len(),
            components = graph.component_count(),
            "network graph built"
        );
        match self.current.write() {
            Ok(mut g) => *g = graph.clone(),
            Err(poisoned) => *poisoned.into_inner() = graph.clone(),
        }
        self.answers.invalidate_all();
        Ok(graph)
    }
}
