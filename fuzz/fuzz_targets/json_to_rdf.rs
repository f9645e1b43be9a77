#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hex_core_service::fuzzing::json_to_rdf(data));
