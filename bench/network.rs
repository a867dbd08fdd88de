//! Criterion benchmarks of the network graph on a generated 100,000-node network:
//! building the graph, a full downstream traversal from the root, a bounded upstream walk,
//! and paths by hops and by length. Results go to bench/RESULTS.md.

#[path = "gen_network.rs"]
mod gen_network;

use coeqwal_network_api::network::graph::{Direction, Graph};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn network(c: &mut Criterion) {
    let (nodes, arcs) = gen_network::generate(100_000, 42);
    c.bench_function("build 100k graph", |b| {
        b.iter(|| Graph::build(black_box(nodes.clone()), black_box(arcs.clone())))
    });
    let g = Graph::build(nodes, arcs);
    let root = g.node_by_code("N0").expect("root");
    let leaf = g.node_by_code("N99999").expect("leaf");
    c.bench_function("downstream from root, 100k nodes", |b| {
        b.iter(|| g.traverse(black_box(root), Direction::Downstream, None, None))
    });
    c.bench_function("upstream from a leaf, max_depth 50", |b| {
        b.iter(|| g.traverse(black_box(leaf), Direction::Upstream, Some(50), None))
    });
    c.bench_function("path root to leaf by hops", |b| {
        b.iter(|| g.path_hops(black_box(root), black_box(leaf)))
    });
    c.bench_function("path root to leaf by length", |b| {
        b.iter(|| g.path_length(black_box(root), black_box(leaf)))
    });
    c.bench_function("summary of the root", |b| {
        b.iter(|| g.summary(black_box(root)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = network
}
criterion_main!(benches);
