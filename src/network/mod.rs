//! Network analysis: the graph of nodes and arcs, kept in memory above whichever source serves.
//!
//! `Network` holds the current graph behind an `Arc`; a rebuild makes a whole new graph and
//! swaps the pointer, so readers never see half a graph and never wait on a rebuild.

pub mod graph;
pub mod routes;

use crate::config::Config;
use crate::error::AppResult;
use crate::source::Source;
use graph::Graph;
use std::sync::{Arc, RwLock};

/// The layer names the graph is built from.
pub const NODE_LAYER: &str = "nodes";
/// See [`NODE_LAYER`].
pub const ARC_LAYER: &str = "arcs";

/// The current graph, swapped whole on rebuild.
#[derive(Default)]
pub struct Network {
    current: RwLock<Arc<Graph>>,
}

impl Network {
    /// The graph as it is now; cheap (one `Arc` clone).
    pub fn graph(&self) -> Arc<Graph> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the node and arc layers from the source and swaps in a new graph.
    pub async fn rebuild(&self, source: &dyn Source, config: &Config) -> AppResult<Arc<Graph>> {
        let (Some(nodes), Some(arcs)) = (config.layer(NODE_LAYER), config.layer(ARC_LAYER)) else {
            return Ok(self.graph());
        };
        let node_rows = source.rows(nodes).await?;
        let arc_rows = source.rows(arcs).await?;
        let graph = Arc::new(Graph::build(node_rows, arc_rows));
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
        Ok(graph)
    }
}
