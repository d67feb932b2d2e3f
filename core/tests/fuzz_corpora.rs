//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and the inputs of fixed crashes
//! (`fuzz/regressions/<target>/`) through the fuzz entry points, on stable: every input that
//! libFuzzer kept must still go through without a panic. A corpus directory that is missing or
//! empty fails the test, so that it cannot pass with nothing replayed.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("engine_packet", polysio::fuzzing::engine_packet),
    ("engine_payload", polysio::fuzzing::engine_payload),
    ("sio_decoder", polysio::fuzzing::sio_decoder),
    ("json_value", polysio::fuzzing::json_value),
    ("client_handshake", polysio::fuzzing::client_handshake),
    ("http_routing", polysio::fuzzing::http_routing),
    #[cfg(feature = "msgpack")]
    (
        "redis_classic_message",
        polysio::fuzzing::redis_classic_message,
    ),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (so a failure names the same input every run).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file of `dir`; returns how many there were. A panic names the file.
fn replay(name: &str, target: Target, dir: &Path) -> usize {
    let files = inputs(dir);
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            panic!("fuzz target {name} panicked on {}", f.display());
        }
    }
    files.len()
}

#[test]
fn corpora_replay_without_a_panic() {
    let corpus = fuzz_dir().join("corpus");
    for (name, target) in TARGETS {
        let dir = corpus.join(name);
        assert!(dir.is_dir(), "missing corpus {}", dir.display());
        let n = replay(name, *target, &dir);
        assert!(n > 0, "empty corpus {}", dir.display());
        eprintln!("{name}: {n} corpus inputs");
    }
}

#[test]
fn fixed_crashes_stay_fixed() {
    let regressions = fuzz_dir().join("regressions");
    for (name, target) in TARGETS {
        let dir = regressions.join(name);
        if dir.is_dir() {
            let n = replay(name, *target, &dir);
            eprintln!("{name}: {n} regression inputs");
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_no_corpus_lacks_a_target() {
    let corpus = fuzz_dir().join("corpus");
    let mut dirs: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .filter_map(|e| {
            let e = e.ok()?;
            e.path()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(
        dirs, names,
        "fuzz/corpus/ and the targets replayed here differ"
    );
}
