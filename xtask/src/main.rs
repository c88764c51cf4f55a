mod fuzz;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fuzz") => fuzz::run(fuzz::parse_seconds(&args[1..])?),
        _ => anyhow::bail!("usage: cargo xtask fuzz [--seconds N]"),
    }
}
