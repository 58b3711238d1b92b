#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    drover::fuzzing::pack_values(data);
});
