//! The OpenAPI 3.1 description of every route, served at `/api/openapi.json`.
//!
//! Routes are described in one table ([`ROUTES`]) of plain data and turned into a `utoipa`
//! document; a test checks that the table and the router list the same routes.

use crate::app::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Required,
    ResponseBuilder, ServerBuilder,
};

/// Where a parameter goes.
#[derive(Clone, Copy)]
enum At {
    Path,
    Query,
}

/// The values a parameter takes.
#[derive(Clone, Copy)]
enum Kind {
    /// Free text of at most this many characters.
    Text(usize),
    /// Text matching a pattern.
    Pattern(&'static str),
    /// An integer within bounds.
    Int(i64, i64),
    /// One of these words.
    Words(&'static [&'static str]),
}

/// One parameter of a route.
struct Param {
    name: &'static str,
    at: At,
    required: bool,
    kind: Kind,
    about: &'static str,
}

/// What a successful answer is.
#[derive(Clone, Copy)]
enum Body {
    Object,
    Array,
    GeoJson,
    /// JSON, or GeoJSON with `f=geojson`.
    JsonOrGeoJson,
    Tile,
    Html,
    Text,
    Any,
}

/// One route of the server.
struct Route {
    path: &'static str,
    post: bool,
    tag: &'static str,
    summary: &'static str,
    params: &'static [Param],
    body: Body,
    /// Answers with an ETag and `304` to `If-None-Match`.
    etag: bool,
}

const fn path(name: &'static str, kind: Kind, about: &'static str) -> Param {
    Param {
        name,
        at: At::Path,
        required: true,
        kind,
        about,
    }
}

const fn query(name: &'static str, kind: Kind, about: &'static str) -> Param {
    Param {
        name,
        at: At::Query,
        required: false,
        kind,
        about,
    }
}

const fn required(name: &'static str, kind: Kind, about: &'static str) -> Param {
    Param {
        name,
        at: At::Query,
        required: true,
        kind,
        about,
    }
}

const NAME: Kind = Kind::Pattern("^[A-Za-z0-9_]{1,64}$");
const LAYERS: Param = path(
    "layers",
    Kind::Pattern("^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$"),
    "a layer name or a comma list (nodes, arcs, demand_units)",
);
const LAYER: Param = path("layer", NAME, "a layer (collection) name");
const CODE: Param = path(
    "code",
    Kind::Text(64),
    "a node or arc short_code, e.g. SHSTA",
);
const ID: Param = path(
    "id",
    Kind::Pattern("^[0-9]{1,18}$"),
    "the numeric feature id",
);
const BBOX: Param = query(
    "bbox",
    Kind::Pattern(r"^-?[0-9.]+,-?[0-9.]+,-?[0-9.]+,-?[0-9.]+$"),
    "minLon,minLat,maxLon,maxLat in WGS84",
);
const FORMAT: Param = query(
    "f",
    Kind::Words(&["json", "geojson"]),
    "geojson for a FeatureCollection",
);
const NO_PARAMS: &[Param] = &[];

/// Every route the router serves.
const ROUTES: &[Route] = &[
    Route {
        path: "/",
        post: false,
        tag: "web",
        summary: "Map viewer (HTML), or the OGC API landing page with f=json or Accept: application/json",
        params: &[query(
            "f",
            Kind::Words(&["json", "html"]),
            "json for the landing page",
        )],
        body: Body::Any,
        etag: true,
    },
    Route {
        path: "/docs",
        post: false,
        tag: "web",
        summary: "Interactive API documentation",
        params: NO_PARAMS,
        body: Body::Html,
        etag: false,
    },
    Route {
        path: "/api/openapi.json",
        post: false,
        tag: "web",
        summary: "This OpenAPI description",
        params: NO_PARAMS,
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/styles/{name}.json",
        post: false,
        tag: "web",
        summary: "A MapLibre style over this server's TileJSON",
        params: &[path(
            "name",
            Kind::Pattern("^[A-Za-z0-9_-]{1,64}$"),
            "style name, e.g. calsim",
        )],
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/web/{path}",
        post: false,
        tag: "web",
        summary: "Static files of the viewer",
        params: &[path(
            "path",
            Kind::Pattern("^[A-Za-z0-9_./-]{1,200}$"),
            "file path inside the web folder",
        )],
        body: Body::Any,
        etag: false,
    },
    Route {
        path: "/health",
        post: false,
        tag: "operations",
        summary: "Liveness: 200 while the process answers",
        params: NO_PARAMS,
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/ready",
        post: false,
        tag: "operations",
        summary: "Readiness: 200 when the source answers, else 503",
        params: NO_PARAMS,
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/metrics",
        post: false,
        tag: "operations",
        summary: "Prometheus metrics (text format)",
        params: NO_PARAMS,
        body: Body::Text,
        etag: false,
    },
    Route {
        path: "/catalog",
        post: false,
        tag: "tiles",
        summary: "Every layer: geometry, fields, zooms, bounds, count",
        params: NO_PARAMS,
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/tiles/{layers}.json",
        post: false,
        tag: "tiles",
        summary: "TileJSON 3.0.0 of a layer or layer list",
        params: &[LAYERS],
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/tiles/{layers}/{z}/{x}/{y}.{format}",
        post: false,
        tag: "tiles",
        summary: "A vector tile (mvt, pbf) or the tile's features as GeoJSON; 204 when empty",
        params: &[
            LAYERS,
            path("z", Kind::Int(0, 22), "zoom"),
            path("x", Kind::Int(0, 4194303), "column"),
            path("y", Kind::Int(0, 4194303), "row"),
            path(
                "format",
                Kind::Words(&["mvt", "pbf", "geojson"]),
                "encoding",
            ),
        ],
        body: Body::Tile,
        etag: true,
    },
    Route {
        path: "/conformance",
        post: false,
        tag: "features",
        summary: "OGC API - Features conformance classes",
        params: &[query("f", Kind::Words(&["json"]), "json")],
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/collections",
        post: false,
        tag: "features",
        summary: "The feature collections (layers) with extents",
        params: &[query("f", Kind::Words(&["json"]), "json")],
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/collections/{layer}",
        post: false,
        tag: "features",
        summary: "One collection",
        params: &[LAYER, query("f", Kind::Words(&["json"]), "json")],
        body: Body::Object,
        etag: true,
    },
    Route {
        path: "/collections/{layer}/items",
        post: false,
        tag: "features",
        summary: "A page of features; any published property may also be given as an equality filter (?node_type=STR)",
        params: &[
            LAYER,
            BBOX,
            query("limit", Kind::Int(1, 10_000), "page size (default 100)"),
            query("offset", Kind::Int(0, 10_000_000), "features skipped"),
            query(
                "clip",
                Kind::Words(&["true", "false", "1", "0"]),
                "clip geometries to bbox",
            ),
            FORMAT,
        ],
        body: Body::GeoJson,
        etag: true,
    },
    Route {
        path: "/collections/{layer}/items/{id}",
        post: false,
        tag: "features",
        summary: "One feature by id",
        params: &[LAYER, ID, FORMAT],
        body: Body::GeoJson,
        etag: true,
    },
    Route {
        path: "/network/nodes/{code}",
        post: false,
        tag: "network",
        summary: "Node summary: degrees, reach each way, reservoirs, component",
        params: &[CODE],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/network/nodes/{code}/upstream",
        post: false,
        tag: "network",
        summary: "Everything upstream of a node, breadth first",
        params: &[
            CODE,
            query("max_depth", Kind::Int(1, 1000), "most arcs from the node"),
            query(
                "arc_types",
                Kind::Text(200),
                "comma list of arc types to follow, e.g. CH,D",
            ),
            FORMAT,
        ],
        body: Body::JsonOrGeoJson,
        etag: false,
    },
    Route {
        path: "/network/nodes/{code}/downstream",
        post: false,
        tag: "network",
        summary: "Everything downstream of a node, breadth first",
        params: &[
            CODE,
            query("max_depth", Kind::Int(1, 1000), "most arcs from the node"),
            query(
                "arc_types",
                Kind::Text(200),
                "comma list of arc types to follow, e.g. CH,D",
            ),
            FORMAT,
        ],
        body: Body::JsonOrGeoJson,
        etag: false,
    },
    Route {
        path: "/network/path",
        post: false,
        tag: "network",
        summary: "Path along the flow between two nodes",
        params: &[
            required("from", Kind::Text(64), "start node short_code"),
            required("to", Kind::Text(64), "end node short_code"),
            query(
                "weight",
                Kind::Words(&["hops", "length"]),
                "fewest arcs or shortest length_m",
            ),
            FORMAT,
        ],
        body: Body::JsonOrGeoJson,
        etag: false,
    },
    Route {
        path: "/network/arcs/{code}",
        post: false,
        tag: "network",
        summary: "An arc with its two nodes",
        params: &[CODE],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/health",
        post: false,
        tag: "compatibility",
        summary: "Health in the original service's shape",
        params: NO_PARAMS,
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/nodes",
        post: false,
        tag: "compatibility",
        summary: "Nodes as GeoJSON-like elements",
        params: &[
            query("limit", Kind::Int(1, 10_000), "most nodes (default 1000)"),
            query("region", Kind::Text(64), "hydrologic region, e.g. SAC"),
        ],
        body: Body::Array,
        etag: false,
    },
    Route {
        path: "/api/arcs",
        post: false,
        tag: "compatibility",
        summary: "Arcs as GeoJSON-like elements",
        params: &[
            query("limit", Kind::Int(1, 10_000), "most arcs (default 1000)"),
            query("region", Kind::Text(64), "hydrologic region, e.g. SAC"),
        ],
        body: Body::Array,
        etag: false,
    },
    Route {
        path: "/api/nodes/spatial",
        post: false,
        tag: "compatibility",
        summary: "Nodes in a box, thinned by zoom",
        params: &[
            required("bbox", BBOX.kind, "minLng,minLat,maxLng,maxLat"),
            query("zoom", Kind::Int(0, 22), "map zoom (default 10)"),
            query("limit", Kind::Int(1, 10_000), "most nodes (default 1000)"),
        ],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/nodes/optimized",
        post: false,
        tag: "compatibility",
        summary: "The lightest node list for a map",
        params: &[query(
            "limit",
            Kind::Int(1, 10_000),
            "most nodes (default 500)",
        )],
        body: Body::Array,
        etag: false,
    },
    Route {
        path: "/api/search",
        post: false,
        tag: "compatibility",
        summary: "Search nodes and arcs by short_code, name or calsim_id",
        params: &[
            required("q", Kind::Text(100), "2 to 100 characters"),
            query("limit", Kind::Int(1, 100), "most results (default 20)"),
        ],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/nodes/{id}/analysis",
        post: false,
        tag: "compatibility",
        summary: "Upstream and downstream of a node, by depth",
        params: &[
            ID,
            query("max_depth", Kind::Int(1, 10), "depth (default 3)"),
        ],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/arcs/{id}/analysis",
        post: false,
        tag: "compatibility",
        summary: "An arc and its end nodes' connections",
        params: &[ID],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/nodes/{id}/network",
        post: false,
        tag: "compatibility",
        summary: "The network around a node",
        params: &[
            ID,
            query(
                "direction",
                Kind::Words(&["both", "upstream", "downstream"]),
                "which way",
            ),
            query("max_depth", Kind::Int(1, 100), "depth (default 50)"),
            query(
                "include_arcs",
                Kind::Words(&["true", "false"]),
                "include arcs",
            ),
        ],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/network/analysis/node/{id}",
        post: false,
        tag: "compatibility",
        summary: "Same as /api/nodes/{id}/analysis",
        params: &[
            ID,
            query("max_depth", Kind::Int(1, 10), "depth (default 3)"),
        ],
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/workshop/status",
        post: false,
        tag: "compatibility",
        summary: "Readiness for a workshop; starts warming the tile cache",
        params: NO_PARAMS,
        body: Body::Object,
        etag: false,
    },
    Route {
        path: "/api/batch",
        post: true,
        tag: "compatibility",
        summary: "Up to 50 GET requests of this server in one call: [{\"path\": \"/...\"}]",
        params: NO_PARAMS,
        body: Body::Array,
        etag: false,
    },
];

/// Every documented path, as the OpenAPI document spells it (for tests).
pub fn documented_paths() -> Vec<(&'static str, &'static str)> {
    ROUTES
        .iter()
        .map(|r| (if r.post { "POST" } else { "GET" }, r.path))
        .collect()
}

fn schema_of(kind: Kind) -> Schema {
    let b = ObjectBuilder::new();
    let b = match kind {
        Kind::Text(max) => b
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max)),
        Kind::Pattern(p) => b.schema_type(Type::String).pattern(Some(p)),
        Kind::Int(min, max) => b
            .schema_type(Type::Integer)
            .minimum(Some(min as f64))
            .maximum(Some(max as f64)),
        Kind::Words(words) => b
            .schema_type(Type::String)
            .enum_values(Some(words.iter().copied())),
    };
    Schema::Object(b.build())
}

fn content(media: &str, schema: Schema) -> (String, utoipa::openapi::Content) {
    (
        media.to_string(),
        ContentBuilder::new().schema(Some(schema)).build(),
    )
}

fn object() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::Object).build())
}

fn anything() -> Schema {
    Schema::Object(ObjectBuilder::new().build())
}

fn binary() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/octet-stream")
            .build(),
    )
}

fn text() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())
}

fn ok_contents(body: Body) -> Vec<(String, utoipa::openapi::Content)> {
    match body {
        Body::Object => vec![content("application/json", object())],
        Body::Array => vec![content(
            "application/json",
            Schema::Array(ArrayBuilder::new().items(ObjectBuilder::new()).build()),
        )],
        Body::GeoJson => vec![content("application/geo+json", object())],
        Body::JsonOrGeoJson => vec![
            content("application/json", object()),
            content("application/geo+json", object()),
        ],
        Body::Tile => vec![
            content("application/vnd.mapbox-vector-tile", binary()),
            content("application/geo+json", object()),
        ],
        Body::Html => vec![content("text/html", text())],
        Body::Text => vec![content("text/plain", text())],
        Body::Any => vec![
            content("text/html", text()),
            content("application/json", object()),
            content("*/*", anything()),
        ],
    }
}

fn problem(description: &str) -> utoipa::openapi::Response {
    let (media, c) = content("application/problem+json", object());
    ResponseBuilder::new()
        .description(description)
        .content(media, c)
        .build()
}

/// Builds the whole document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for r in ROUTES {
        let mut op = OperationBuilder::new()
            .summary(Some(r.summary))
            .tag(r.tag)
            .operation_id(Some(operation_id(r)));
        for p in r.params {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(p.name)
                    .parameter_in(match p.at {
                        At::Path => ParameterIn::Path,
                        At::Query => ParameterIn::Query,
                    })
                    .required(if p.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(p.about))
                    .example(example(r.path, p.name))
                    .schema(Some(schema_of(p.kind))),
            );
        }
        let mut ok = ResponseBuilder::new().description("Success");
        for (media, c) in ok_contents(r.body) {
            ok = ok.content(media, c);
        }
        op = op.response("200", ok.build());
        if matches!(r.body, Body::Tile) {
            op = op.response(
                "204",
                ResponseBuilder::new()
                    .description("The tile is empty")
                    .build(),
            );
        }
        if r.etag {
            op = op.response(
                "304",
                ResponseBuilder::new()
                    .description("Not modified (If-None-Match matched the ETag)")
                    .build(),
            );
        }
        op = op
            .response("400", problem("Malformed request; detail says what to fix"))
            .response("404", problem("No such route, layer, node or feature"))
            .response(
                "503",
                problem("The database is unavailable; retry after Retry-After"),
            );
        if r.post {
            op = op
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Schema::Array(
                                    ArrayBuilder::new()
                                        .items(
                                            ObjectBuilder::new()
                                                .schema_type(Type::Object)
                                                .property(
                                                    "path",
                                                    ObjectBuilder::new().schema_type(Type::String),
                                                )
                                                .required("path"),
                                        )
                                        .max_items(Some(50))
                                        .build(),
                                )))
                                .build(),
                        )
                        .build(),
                ))
                .response("413", problem("The body is larger than 64 KiB"));
        }
        let method = if r.post {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        };
        paths = paths.path(r.path, PathItem::new(method, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("COEQWAL network API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Vector tiles, GeoJSON (OGC API - Features) and network analysis of the \
                     CalSim3 water network of California. Errors are application/problem+json.",
                ))
                .build(),
        )
        .paths(paths.build())
        .build()
}

/// A value of a parameter that finds data in the sample and CalSim3 networks.
fn example(path: &str, name: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match name {
        "code" if path.starts_with("/network/arcs") => json!("C_SHSTA"),
        "layers" => json!("nodes,arcs"),
        "layer" => json!("nodes"),
        "z" => json!(8),
        "x" => json!(41),
        "y" => json!(98),
        "format" => json!("mvt"),
        "code" | "from" => json!("SHSTA"),
        "to" => json!("KSWCK"),
        "id" => json!("1"),
        "name" => json!("calsim"),
        "path" => json!("viewer.js"),
        "bbox" => json!("-122.5,37.5,-121,39"),
        "q" => json!("SHA"),
        _ => return None,
    })
}

/// An operation id from the method and path: `get_network_nodes_code_upstream`.
fn operation_id(r: &Route) -> String {
    let mut id = String::from(if r.post { "post" } else { "get" });
    for part in r
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        id.push('_');
        id.push_str(part);
    }
    if r.path == "/" {
        id.push_str("_root");
    }
    id
}

/// `GET /api/openapi.json`, with this server as the `servers` entry.
pub async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut doc = document();
    doc.servers = Some(vec![
        ServerBuilder::new().url(state.base_url(&headers)).build(),
    ]);
    let body = doc.to_json().unwrap_or_else(|_| "{}".into()).into_bytes();
    crate::tiles::routes::send_document(&state, &headers, body, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_unique_operation_ids() {
        let doc: serde_json::Value = serde_json::from_str(&document().to_json().unwrap()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut ids = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(ids.insert(operation_id(r)), "duplicate id for {}", r.path);
        }
    }
}
