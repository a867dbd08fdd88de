//! The network graph: nodes and directed arcs (the direction of flow) in compressed arrays.
//!
//! Built once from the node and arc layers of whichever source serves, then only read: the
//! adjacency is two CSR arrays (arcs leaving and arcs entering each node), so a traversal of
//! 100,000 nodes touches flat memory only. Every operation is a plain function of `&Graph`,
//! tested without HTTP; `network::routes` and `compat` turn the results into JSON.

use crate::source::NetworkRow;
use serde_json::Value;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// A node of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// Feature id.
    pub id: i64,
    /// `short_code`, the key arcs refer to.
    pub code: String,
    /// Name, when given.
    pub name: Option<String>,
    /// `node_type` (e.g. `STR` for reservoirs).
    pub node_type: Option<String>,
    /// Reservoir capacity, thousand acre-feet.
    pub capacity_taf: Option<f64>,
    /// Geometry as GeoJSON.
    pub geometry: Value,
    /// Every published property.
    pub properties: serde_json::Map<String, Value>,
}

/// A directed arc between two known nodes.
#[derive(Debug, Clone)]
pub struct Arc {
    /// Feature id.
    pub id: i64,
    /// `short_code`.
    pub code: String,
    /// Name, when given.
    pub name: Option<String>,
    /// `arc_type` (CH channel, D diversion, RT return, SP spill, ...).
    pub arc_type: Option<String>,
    /// Index of the upstream node.
    pub from: u32,
    /// Index of the downstream node.
    pub to: u32,
    /// Length in metres, when known.
    pub length_m: Option<f64>,
    /// Geometry as GeoJSON.
    pub geometry: Value,
    /// Every published property.
    pub properties: serde_json::Map<String, Value>,
}

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Against the flow: what feeds this node.
    Upstream,
    /// With the flow: what this node feeds.
    Downstream,
}

impl Direction {
    /// Lower-case name for JSON.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

/// A node reached by a traversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// Node index.
    pub node: u32,
    /// Arcs from the origin (0 for the origin).
    pub depth: u32,
}

/// Result of a traversal: nodes in breadth-first order and the arcs walked between them.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Each node once, origin first, with its depth.
    pub visits: Vec<Visit>,
    /// Arc indices that join two visited nodes in the walked direction (each once).
    pub arcs: Vec<u32>,
}

/// A path: the arcs from the first node to the last, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Node indices, origin first.
    pub nodes: Vec<u32>,
    /// Arc indices between them.
    pub arcs: Vec<u32>,
    /// Sum of `length_m` (unknown lengths count 0).
    pub length_m: f64,
}

/// What `nodes/{code}` reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Arcs entering.
    pub in_degree: usize,
    /// Arcs leaving.
    pub out_degree: usize,
    /// Nodes upstream (origin excluded).
    pub upstream_count: usize,
    /// Nodes downstream (origin excluded).
    pub downstream_count: usize,
    /// Reservoirs upstream (origin excluded).
    pub upstream_reservoirs: Vec<u32>,
    /// Reservoirs downstream (origin excluded).
    pub downstream_reservoirs: Vec<u32>,
    /// Weakly connected component id.
    pub component: u32,
    /// Nodes in that component.
    pub component_size: usize,
}

/// The whole network, read-only once built.
#[derive(Debug, Default)]
pub struct Graph {
    /// Increases with every rebuild; keys cached answers so a rebuild retires them.
    pub generation: u64,
    /// Nodes by index.
    pub nodes: Vec<Node>,
    /// Arcs by index.
    pub arcs: Vec<Arc>,
    by_code: HashMap<String, u32>,
    by_id: HashMap<i64, u32>,
    arc_by_code: HashMap<String, u32>,
    arc_by_id: HashMap<i64, u32>,
    out_start: Vec<u32>,
    out_arcs: Vec<u32>,
    in_start: Vec<u32>,
    in_arcs: Vec<u32>,
    component: Vec<u32>,
    component_size: Vec<u32>,
    /// Arcs left out because an end is not a known node: (arc code, missing end).
    pub dangling: Vec<(String, String)>,
}

fn text(props: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    props.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number(props: &serde_json::Map<String, Value>, key: &str) -> Option<f64> {
    props.get(key).and_then(Value::as_f64)
}

/// Builds CSR arrays: for each node, the arcs whose `end(arc)` is that node.
fn csr(n: usize, arcs: &[Arc], end: impl Fn(&Arc) -> u32) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n + 1];
    for a in arcs {
        start[end(a) as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut list = vec![0u32; arcs.len()];
    for (i, a) in arcs.iter().enumerate() {
        let slot = &mut fill[end(a) as usize];
        list[*slot as usize] = i as u32;
        *slot += 1;
    }
    (start, list)
}

impl Graph {
    /// Builds the graph from node and arc rows (published properties `short_code`, `name`,
    /// `node_type`, `capacity_taf`; `arc_type`, `from_node`, `to_node`, `length_m`).
    pub fn build(node_rows: Vec<NetworkRow>, arc_rows: Vec<NetworkRow>) -> Graph {
        let mut g = Graph::default();
        for row in node_rows {
            let Some(code) = text(&row.properties, "short_code") else {
                continue;
            };
            let index = g.nodes.len() as u32;
            if g.by_code.insert(code.clone(), index).is_some() {
                continue;
            }
            g.by_id.insert(row.id, index);
            g.nodes.push(Node {
                id: row.id,
                name: text(&row.properties, "name"),
                node_type: text(&row.properties, "node_type"),
                capacity_taf: number(&row.properties, "capacity_taf"),
                code,
                geometry: row.geometry,
                properties: row.properties,
            });
        }
        for row in arc_rows {
            let code = text(&row.properties, "short_code").unwrap_or_default();
            let from = text(&row.properties, "from_node").unwrap_or_default();
            let to = text(&row.properties, "to_node").unwrap_or_default();
            let (Some(&f), Some(&t)) = (g.by_code.get(&from), g.by_code.get(&to)) else {
                let missing = if g.by_code.contains_key(&from) {
                    to
                } else {
                    from
                };
                g.dangling.push((code, missing));
                continue;
            };
            let index = g.arcs.len() as u32;
            g.arc_by_code.insert(code.clone(), index);
            g.arc_by_id.insert(row.id, index);
            g.arcs.push(Arc {
                id: row.id,
                name: text(&row.properties, "name"),
                arc_type: text(&row.properties, "arc_type"),
                from: f,
                to: t,
                length_m: number(&row.properties, "length_m"),
                code,
                geometry: row.geometry,
                properties: row.properties,
            });
        }
        let n = g.nodes.len();
        (g.out_start, g.out_arcs) = csr(n, &g.arcs, |a| a.from);
        (g.in_start, g.in_arcs) = csr(n, &g.arcs, |a| a.to);
        g.label_components();
        g
    }

    fn label_components(&mut self) {
        let n = self.nodes.len();
        self.component = vec![u32::MAX; n];
        self.component_size.clear();
        let mut queue = VecDeque::new();
        for start in 0..n {
            if self.component[start] != u32::MAX {
                continue;
            }
            let label = self.component_size.len() as u32;
            let mut size = 0u32;
            self.component[start] = label;
            queue.push_back(start as u32);
            while let Some(v) = queue.pop_front() {
                size += 1;
                let outs = self.leaving(v).map(|a| self.arcs[a as usize].to);
                let ins = self.entering(v).map(|a| self.arcs[a as usize].from);
                let next: Vec<u32> = outs.chain(ins).collect();
                for w in next {
                    if self.component[w as usize] == u32::MAX {
                        self.component[w as usize] = label;
                        queue.push_back(w);
                    }
                }
            }
            self.component_size.push(size);
        }
    }

    /// Arcs leaving a node.
    pub fn leaving(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        let (s, e) = (
            self.out_start[node as usize],
            self.out_start[node as usize + 1],
        );
        self.out_arcs[s as usize..e as usize].iter().copied()
    }

    /// Arcs entering a node.
    pub fn entering(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        let (s, e) = (
            self.in_start[node as usize],
            self.in_start[node as usize + 1],
        );
        self.in_arcs[s as usize..e as usize].iter().copied()
    }

    /// Node index by short code.
    pub fn node_by_code(&self, code: &str) -> Option<u32> {
        self.by_code.get(code).copied()
    }

    /// Node index by feature id.
    pub fn node_by_id(&self, id: i64) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    /// Arc index by short code.
    pub fn arc_by_code(&self, code: &str) -> Option<u32> {
        self.arc_by_code.get(code).copied()
    }

    /// Arc index by feature id.
    pub fn arc_by_id(&self, id: i64) -> Option<u32> {
        self.arc_by_id.get(&id).copied()
    }

    /// Number of weakly connected components.
    pub fn component_count(&self) -> usize {
        self.component_size.len()
    }

    /// Breadth-first walk from `origin`: each node once with its depth; `max_depth` bounds the
    /// depth; `arc_types`, when given, keeps only arcs of those types. Cycles end the walk
    /// naturally since a node is never visited twice.
    pub fn traverse(
        &self,
        origin: u32,
        direction: Direction,
        max_depth: Option<u32>,
        arc_types: Option<&HashSet<String>>,
    ) -> Reach {
        let mut depth = vec![u32::MAX; self.nodes.len()];
        let mut reach = Reach::default();
        let mut queue = VecDeque::new();
        depth[origin as usize] = 0;
        queue.push_back(origin);
        while let Some(v) = queue.pop_front() {
            let d = depth[v as usize];
            reach.visits.push(Visit { node: v, depth: d });
            if max_depth.is_some_and(|m| d >= m) {
                continue;
            }
            let arcs: Box<dyn Iterator<Item = u32>> = match direction {
                Direction::Downstream => Box::new(self.leaving(v)),
                Direction::Upstream => Box::new(self.entering(v)),
            };
            for a in arcs {
                let arc = &self.arcs[a as usize];
                if let Some(types) = arc_types
                    && !arc.arc_type.as_ref().is_some_and(|t| types.contains(t))
                {
                    continue;
                }
                let w = match direction {
                    Direction::Downstream => arc.to,
                    Direction::Upstream => arc.from,
                };
                if depth[w as usize] == u32::MAX {
                    depth[w as usize] = d + 1;
                    queue.push_back(w);
                }
            }
        }
        // Arcs among the visited nodes, in the walked direction, respecting the type filter.
        for v in &reach.visits {
            for a in self.leaving(v.node) {
                let arc = &self.arcs[a as usize];
                if depth[arc.to as usize] == u32::MAX {
                    continue;
                }
                if let Some(types) = arc_types
                    && !arc.arc_type.as_ref().is_some_and(|t| types.contains(t))
                {
                    continue;
                }
                reach.arcs.push(a);
            }
        }
        reach
    }

    /// Fewest-arcs path from `from` to `to` along the flow; `None` when there is none.
    pub fn path_hops(&self, from: u32, to: u32) -> Option<Path> {
        let mut via = vec![u32::MAX; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = VecDeque::from([from]);
        seen[from as usize] = true;
        while let Some(v) = queue.pop_front() {
            if v == to {
                return Some(self.unwind(from, to, &via));
            }
            for a in self.leaving(v) {
                let w = self.arcs[a as usize].to;
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    via[w as usize] = a;
                    queue.push_back(w);
                }
            }
        }
        None
    }

    /// Shortest path by `length_m` (Dijkstra; unknown lengths count 0).
    pub fn path_length(&self, from: u32, to: u32) -> Option<Path> {
        #[derive(PartialEq)]
        struct Item(f64, u32);
        impl Eq for Item {}
        impl PartialOrd for Item {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Item {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
            }
        }
        let n = self.nodes.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut via = vec![u32::MAX; n];
        let mut heap = BinaryHeap::from([Item(0.0, from)]);
        dist[from as usize] = 0.0;
        while let Some(Item(d, v)) = heap.pop() {
            if d > dist[v as usize] {
                continue;
            }
            if v == to {
                return Some(self.unwind(from, to, &via));
            }
            for a in self.leaving(v) {
                let arc = &self.arcs[a as usize];
                let nd = d + arc.length_m.unwrap_or(0.0).max(0.0);
                if nd < dist[arc.to as usize] {
                    dist[arc.to as usize] = nd;
                    via[arc.to as usize] = a;
                    heap.push(Item(nd, arc.to));
                }
            }
        }
        None
    }

    fn unwind(&self, from: u32, to: u32, via: &[u32]) -> Path {
        let mut arcs = Vec::new();
        let mut v = to;
        while v != from {
            let a = via[v as usize];
            arcs.push(a);
            v = self.arcs[a as usize].from;
        }
        arcs.reverse();
        let mut nodes = vec![from];
        nodes.extend(arcs.iter().map(|&a| self.arcs[a as usize].to));
        let length_m = arcs
            .iter()
            .map(|&a| self.arcs[a as usize].length_m.unwrap_or(0.0))
            .sum();
        Path {
            nodes,
            arcs,
            length_m,
        }
    }

    /// Degrees, reach each way, reservoirs each way and the component of a node.
    pub fn summary(&self, node: u32) -> Summary {
        let up = self.traverse(node, Direction::Upstream, None, None);
        let down = self.traverse(node, Direction::Downstream, None, None);
        let reservoirs = |r: &Reach| -> Vec<u32> {
            r.visits
                .iter()
                .skip(1)
                .map(|v| v.node)
                .filter(|&n| self.nodes[n as usize].node_type.as_deref() == Some("STR"))
                .collect()
        };
        let component = self.component[node as usize];
        Summary {
            in_degree: self.entering(node).count(),
            out_degree: self.leaving(node).count(),
            upstream_count: up.visits.len() - 1,
            downstream_count: down.visits.len() - 1,
            upstream_reservoirs: reservoirs(&up),
            downstream_reservoirs: reservoirs(&down),
            component,
            component_size: self.component_size[component as usize] as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: i64, props: Value) -> NetworkRow {
        NetworkRow {
            id,
            geometry: Value::Null,
            properties: props.as_object().cloned().unwrap_or_default(),
        }
    }

    /// A -> B -> C -> D, B -> E (diversion), E -> B (return: a cycle), X isolated, F -> ?.
    fn sample() -> Graph {
        let nodes = ["A", "B", "C", "D", "E", "X"]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let t = if *c == "A" || *c == "D" { "STR" } else { "CH" };
                row(
                    i as i64 + 1,
                    json!({"short_code": c, "node_type": t, "capacity_taf": 10.0}),
                )
            })
            .collect();
        let arc = |id, code: &str, f: &str, t: &str, ty: &str, len: f64| {
            row(
                id,
                json!({"short_code": code, "from_node": f, "to_node": t, "arc_type": ty, "length_m": len}),
            )
        };
        let arcs = vec![
            arc(1, "AB", "A", "B", "CH", 1.0),
            arc(2, "BC", "B", "C", "CH", 1.0),
            arc(3, "CD", "C", "D", "CH", 1.0),
            arc(4, "BE", "B", "E", "D", 0.5),
            arc(5, "EB", "E", "B", "RT", 0.5),
            arc(6, "ED", "E", "D", "D", 10.0),
            arc(7, "FQ", "F", "Q", "CH", 1.0),
        ];
        Graph::build(nodes, arcs)
    }

    #[test]
    fn downstream_visits_each_node_once_with_depth() {
        let g = sample();
        let a = g.node_by_code("A").unwrap();
        let r = g.traverse(a, Direction::Downstream, None, None);
        let codes: Vec<(&str, u32)> = r
            .visits
            .iter()
            .map(|v| (g.nodes[v.node as usize].code.as_str(), v.depth))
            .collect();
        assert_eq!(
            codes,
            vec![("A", 0), ("B", 1), ("C", 2), ("E", 2), ("D", 3)]
        );
        assert_eq!(r.arcs.len(), 6);
        assert_eq!(g.dangling, vec![("FQ".to_string(), "F".to_string())]);
    }

    #[test]
    fn depth_and_type_filters() {
        let g = sample();
        let a = g.node_by_code("A").unwrap();
        assert_eq!(
            g.traverse(a, Direction::Downstream, Some(1), None)
                .visits
                .len(),
            2
        );
        let ch: HashSet<String> = ["CH".to_string()].into();
        let r = g.traverse(a, Direction::Downstream, None, Some(&ch));
        assert_eq!(r.visits.len(), 4); // E only by a diversion
        let d = g.node_by_code("D").unwrap();
        assert_eq!(
            g.traverse(d, Direction::Upstream, None, None).visits.len(),
            5
        );
    }

    #[test]
    fn paths_by_hops_and_length() {
        let g = sample();
        let (a, d) = (g.node_by_code("A").unwrap(), g.node_by_code("D").unwrap());
        let hops = g.path_hops(a, d).unwrap();
        assert_eq!(hops.arcs.len(), 3);
        let by_len = g.path_length(a, d).unwrap();
        assert_eq!(by_len.length_m, 3.0);
        assert!(g.path_hops(d, a).is_none());
        let x = g.node_by_code("X").unwrap();
        assert!(g.path_length(a, x).is_none());
    }

    #[test]
    fn summary_counts_reservoirs_and_components() {
        let g = sample();
        let s = g.summary(g.node_by_code("B").unwrap());
        assert_eq!((s.in_degree, s.out_degree), (2, 2));
        assert_eq!((s.upstream_count, s.downstream_count), (2, 3));
        assert_eq!(s.upstream_reservoirs.len(), 1);
        assert_eq!(s.downstream_reservoirs.len(), 1);
        assert_eq!(s.component_size, 5);
        assert_eq!(g.component_count(), 2);
    }
}
