//! The fake upstream as a process, for suites in other languages (tests/sdk). It answers by the
//! prompt's markers (see `flo2_testkit::from_prompt`), prints its base URL on the first line of
//! standard output, and runs until killed. Usage: `flo2-fake-upstream [ADDR] [--no-record]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut addr = "127.0.0.1:0".to_owned();
    let mut record = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            // Load runs: nothing received is kept (see `FakeUpstream::start_with`).
            "--no-record" => record = false,
            _ => addr = arg,
        }
    }
    let fake = flo2_testkit::FakeUpstream::start_with(&addr, record).await;
    println!("{}", fake.base_url());
    std::future::pending::<()>().await;
}
