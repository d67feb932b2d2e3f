#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polysio::fuzzing::engine_payload(data));
