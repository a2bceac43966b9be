//! The fake upstream as a process, for suites in other languages (tests/sdk). It answers by the
//! prompt's markers (see `flo2_testkit::from_prompt`), prints its base URL on the first line of
//! standard output, and runs until killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let fake = flo2_testkit::FakeUpstream::start_on(&addr).await;
    println!("{}", fake.base_url());
    std::future::pending::<()>().await;
}
