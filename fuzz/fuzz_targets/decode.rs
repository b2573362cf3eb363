//! `wire::decode` takes any bytes without panicking, and whatever it accepts encodes back
//! to an envelope that decodes to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ringchat_fuzz::check_decode(data);
});
