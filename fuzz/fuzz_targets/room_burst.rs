//! A room of three real nodes takes a burst of mutated valid datagrams forged with a
//! member's id from that member's own address, and comes back: one leader, and messages
//! shown everywhere. See `ringchat_fuzz::run_room_burst` for how the input is read.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ringchat_fuzz::run_room_burst(data);
});
