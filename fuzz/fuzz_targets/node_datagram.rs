//! A member node (a follower, or the leader of a room of three) takes any sequence of
//! datagrams, commands and passing time without panicking, and only ever sends valid
//! datagrams. See `ringchat_fuzz::run_node` for how the input is read.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ringchat_fuzz::run_node(data);
});
