#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The load client against the scripted fake OpenAI upstream, over real sockets: complete answers,
//! every kind of failure, the time cap, and a target that is not there.

use std::time::Duration;

use capibara_benches::load::{CellPlan, Endpoint, StreamFailure, run_cell};
use capibara_benches::stats::CellStats;
use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, closed_port_url};

fn answer(tokens: usize) -> FakeReply {
    let mut beats: Vec<Beat> = (0..tokens).map(|i| Beat::Content(format!("palabra{i} "))).collect();
    beats.push(Beat::Finish("stop".to_owned()));
    beats.push(Beat::Usage { prompt_tokens: 5, completion_tokens: tokens as u32 });
    FakeReply::Stream(beats)
}

fn plan(concurrency: usize, streams: usize) -> CellPlan {
    CellPlan::new(64, 0, concurrency, streams, Duration::from_secs(10))
}

#[tokio::test]
async fn complete_answers_are_timed_and_counted() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.set_default(answer(64));
    let endpoint = Endpoint::parse(&fake.url()).unwrap();

    let run = run_cell(&endpoint, &plan(4, 12)).await;

    assert_eq!(run.records.len(), 12);
    assert_eq!((run.cut, run.capped), (0, false));
    assert_eq!(run.content_chunks, 12 * 64);
    for record in &run.records {
        assert_eq!(record.failure, None);
        assert_eq!(record.content_chunks, 64);
        let ttft = record.ttft.unwrap();
        assert!(ttft <= record.total && record.total <= run.elapsed, "{record:?}");
    }
    let stats = CellStats::from_run(&run, 64, None);
    assert_eq!((stats.done, stats.errors), (12, 0));
    assert!(stats.streams_per_sec > 0.0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 12);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body["model"], "bench-64x0ms");
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(requests[0].body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn every_kind_of_broken_stream_is_an_error_and_the_connection_recovers() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(answer(10));
    fake.push(FakeReply::status(503, "overloaded"));
    fake.push(FakeReply::Stream(vec![Beat::Content("a ".into()), Beat::Error("upstream broke".into())]));
    fake.push(FakeReply::Stream(vec![Beat::Content("a ".into()), Beat::Disconnect]));
    fake.push(FakeReply::Stream(vec![Beat::Malformed("{not json".into()), Beat::Finish("stop".into())]));
    fake.set_default(answer(64));
    let endpoint = Endpoint::parse(&fake.url()).unwrap();

    let run = run_cell(&endpoint, &plan(1, 6)).await;

    let failures: Vec<Option<&'static str>> =
        run.records.iter().map(|r| r.failure.as_ref().map(StreamFailure::kind)).collect();
    assert_eq!(
        failures,
        vec![
            Some("chunk count"),
            Some("status"),
            Some("error chunk"),
            Some("transport"),
            Some("malformed"),
            None
        ]
    );
    assert_eq!(run.records[0].failure, Some(StreamFailure::ChunkCount { got: 10, expected: 64 }));
    let stats = CellStats::from_run(&run, 64, None);
    assert!(stats.flagged());
    assert_eq!((stats.done, stats.errors), (1, 5));
    assert!(stats.failures["status"].example.contains("503"), "{:?}", stats.failures);
}

#[tokio::test]
async fn the_time_cap_stops_new_streams_and_cuts_the_ones_still_running() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let slow: Vec<Beat> = (0..4)
        .flat_map(|i| [Beat::Content(format!("w{i} ")), Beat::Delay(Duration::from_millis(300))])
        .chain([Beat::Finish("stop".into())])
        .collect();
    fake.set_default(FakeReply::Stream(slow));
    let endpoint = Endpoint::parse(&fake.url()).unwrap();
    let mut plan = CellPlan::new(4, 0, 2, 100, Duration::from_millis(100));
    plan.drain = Duration::from_millis(200);

    let started = std::time::Instant::now();
    let run = run_cell(&endpoint, &plan).await;

    assert!(started.elapsed() < Duration::from_millis(1000), "the cell ran {:?}", started.elapsed());
    assert!(run.capped);
    assert_eq!((run.records.len(), run.cut), (0, 2));
    // Each cut stream delivered its first word before the cap.
    assert_eq!(run.content_chunks, 2);
    // Cutting a stream closes its connection, so the server stops writing it.
    for _ in 0..50 {
        if fake.abandoned_streams() == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the fake saw {} abandoned streams, expected 2", fake.abandoned_streams());
}

#[tokio::test]
async fn connections_start_their_first_streams_spread_over_the_ramp_up() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    // Answers long enough that no connection is free again before the last one has started.
    fake.set_default(FakeReply::Stream(vec![
        Beat::Content("a ".into()),
        Beat::Delay(Duration::from_millis(500)),
        Beat::Finish("stop".into()),
    ]));
    let endpoint = Endpoint::parse(&fake.url()).unwrap();
    let mut plan = CellPlan::new(1, 0, 4, 4, Duration::from_secs(10));
    plan.ramp_up = Duration::from_millis(400);

    let run = run_cell(&endpoint, &plan).await;

    let mut ends: Vec<Duration> = run.records.iter().map(|r| r.ended_at).collect();
    ends.sort();
    assert_eq!(ends.len(), 4);
    // Started at 0, 100, 200 and 300 ms, so they end about 100 ms apart.
    let spread = ends[3] - ends[0];
    assert!(spread >= Duration::from_millis(250) && spread < Duration::from_millis(450), "{ends:?}");
    assert!(ends.windows(2).all(|pair| pair[1] - pair[0] >= Duration::from_millis(60)), "{ends:?}");
}

#[tokio::test]
async fn a_target_that_is_not_there_fails_every_stream_quickly() {
    let endpoint = Endpoint::parse(&closed_port_url().await).unwrap();

    let run = run_cell(&endpoint, &plan(2, 3)).await;

    assert_eq!(run.records.len(), 3);
    assert!(run.records.iter().all(|r| matches!(r.failure, Some(StreamFailure::Connect(_)))));
    assert_eq!(CellStats::from_run(&run, 64, None).streams_per_sec, 0.0);
}
