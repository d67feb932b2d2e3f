#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polysio::fuzzing::redis_classic_message(data));
