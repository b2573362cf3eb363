//! Replays one `room_burst` input with the nodes' logs on stderr:
//! `cargo run --release --example room_burst_replay -- FILE` from `fuzz/`.

fn main() {
    let file = std::env::args().nth(1).expect("the input file");
    let input = std::fs::read(&file).expect("read the input");
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::stderr)
        .init();
    ringchat_fuzz::run_room_burst(&input);
    println!("{file}: the room came back");
}
