use coeqwal_network_api::config::Config;
use coeqwal_network_api::source::{Source, memory::MemorySource, postgis::PostgisSource};
use coeqwal_network_api::tiles::grid::TileCoord;
#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (z, x, y, layer, id): (u32, u64, u64, String, u64) = (
        args[1].parse().unwrap(),
        args[2].parse().unwrap(),
        args[3].parse().unwrap(),
        args[4].clone(),
        args[5].parse().unwrap(),
    );
    let config = Config::default();
    let l = config.layer(&layer).unwrap();
    let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:55432/dev")
        .await
        .unwrap();
    let pg = PostgisSource::new(pool);
    let mem = MemorySource::from_dir(
        std::path::Path::new("../shared/data/calsim3"),
        &config.layers,
    )
    .unwrap();
    let t = TileCoord::new(z, x, y, 22).unwrap();
    for (name, bytes) in [
        ("pg", pg.tile(&[l], t).await.unwrap()),
        ("mem", mem.tile(&[l], t).await.unwrap()),
    ] {
        let r = mvt_reader::Reader::new(bytes).unwrap();
        for f in r.get_features_as::<f64>(0).unwrap() {
            if f.id == Some(id) {
                println!("{name}: {:?}", f.geometry);
            }
        }
    }
}
