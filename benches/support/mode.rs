//! How a `harness = false` bench was started: `cargo bench` (the full run) or `cargo test` (its
//! smoke, `test = true` in Cargo.toml).

/// What `main` should do.
pub enum Mode {
    /// `cargo bench` passed `--bench`: the full run (a filter argument is not supported).
    Full,
    /// `cargo test`: the quick smoke.
    Smoke,
    /// `cargo test --list`, or a filter that does not match the smoke: already answered.
    Done,
}

/// Read the process arguments; under `cargo test`, answer `--list` and non-matching filters
/// for the smoke called `smoke_name`.
pub fn from_args(smoke_name: &str) -> Mode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") {
        return Mode::Full;
    }
    if args.iter().any(|a| a == "--list") {
        println!("{smoke_name}: test");
        return Mode::Done;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| smoke_name.contains(f.as_str())) {
        println!("{smoke_name}: filtered out");
        return Mode::Done;
    }
    Mode::Smoke
}
