//! The `{layers}` comma list of tile and TileJSON paths, of arbitrary bytes, against the
//! default configuration: what resolves is a list of distinct configured layers within the cap;
//! anything else is a 4xx whose message stays under 1 KiB (it echoes a cut of the input, which
//! `{:?}` may escape to several bytes a character), never a panic.
#![no_main]

use coeqwal_network_api::app::AppState;
use coeqwal_network_api::config::Config;
use coeqwal_network_api::error::AppError;
use coeqwal_network_api::source::memory::MemorySource;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn state() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| {
        let config = Config::default();
        let source = MemorySource::sample(&config.layers).expect("the embedded sample loads");
        AppState::new(config, Arc::new(source))
    })
}

fuzz_target!(|data: &[u8]| {
    let state = state();
    let text = String::from_utf8_lossy(data);
    match state.layers(&text) {
        Ok(layers) => {
            assert!(!layers.is_empty());
            assert!(layers.len() <= state.config.max_layers_per_request);
            for (i, l) in layers.iter().enumerate() {
                assert!(state.config.layer(&l.name).is_some());
                assert!(
                    layers[..i].iter().all(|o| o.name != l.name),
                    "{} twice",
                    l.name
                );
            }
        }
        Err(e) => {
            assert!(
                matches!(e, AppError::BadRequest(_) | AppError::NotFound(_)),
                "not a 4xx: {e:?}"
            );
            assert!(e.to_string().len() < 1024, "echoes too much");
        }
    }
});
