#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    drover::fuzzing::app_yaml(data);
});
