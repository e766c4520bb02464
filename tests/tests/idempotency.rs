//! Every step run twice gives the same result as once, and leaves the same
//! state: one slot, one publication, one clone, one subscription, and an
//! origin that never moves backwards.

use clonesync::pg::subscription;
use clonesync::pipeline::Scope;
use clonesync::pipeline::{PipelineSpec, UndoPlan};
use clonesync::steps::{
    advance_and_enable, clean_inherited, cleanup, clone, clone_lsn, create_subscription,
    prepare_source, verify,
};
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::slots_and_publications;
use clonesync_tests::{create_schema, wait_for_marker, TestEnv};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_twice_is_the_same_as_once() {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let spec = PipelineSpec::with_defaults("twice", Scope::AllTables).unwrap();

    let first = env.preflight(&spec).await.unwrap();
    let again = env.preflight(&spec).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(
        first.tables_in_scope, 9,
        "8 leaf tables and 1 partitioned parent"
    );

    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    assert!(prepared.publication_created && prepared.slot_created);
    assert_eq!(
        prepare_source::run(&mut source, &spec).await.unwrap(),
        prepared,
        "same LSN, same ownership"
    );
    // Preflight after prepare: our own slot and publication are no conflict.
    env.preflight(&spec).await.unwrap();

    let info = clone::run(&env.plane, &spec).await.unwrap();
    assert_eq!(clone::run(&env.plane, &spec).await.unwrap(), info);
    assert_eq!(env.clone_dirs().len(), 1, "one clone only");
    let target = connect(&env.plane.clone_login(&info)).await;

    let range = clone_lsn::run(
        &env.plane,
        &source,
        &target,
        &spec,
        &info,
        prepared.consistent_lsn,
    )
    .await
    .unwrap();
    assert!(!range.already_attached);
    let range_again = clone_lsn::run(
        &env.plane,
        &source,
        &target,
        &spec,
        &info,
        prepared.consistent_lsn,
    )
    .await
    .unwrap();
    assert_eq!(range_again.clone_lsn, range.clone_lsn);

    let cleaned = clean_inherited::run(&target, &spec).await.unwrap();
    assert!(
        cleaned.publication_dropped,
        "the copied publication is dropped"
    );
    let cleaned_again = clean_inherited::run(&target, &spec).await.unwrap();
    assert_eq!(
        cleaned_again,
        clean_inherited::Cleaned::default(),
        "nothing left to drop"
    );

    let conninfo = env.source_endpoint().conninfo();
    let sub = create_subscription::run(&target, &spec, &conninfo)
        .await
        .unwrap();
    assert!(sub.created_now);
    let sub_again = create_subscription::run(&target, &spec, &conninfo)
        .await
        .unwrap();
    assert_eq!(
        (sub_again.subscription_oid, sub_again.created_now),
        (sub.subscription_oid, false)
    );

    let enabled = advance_and_enable::run(&target, &spec, range.clone_lsn)
        .await
        .unwrap();
    assert!(enabled.advanced_now && enabled.enabled_now);
    assert_eq!(enabled.origin_lsn, range.clone_lsn);
    verify::run(&source, &target, &spec, Duration::from_secs(30))
        .await
        .unwrap();

    // Let the origin move forward, then run everything again: nothing may
    // move it back, drop our subscription, or create a second anything.
    source
        .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('after enable', 7)")
        .await
        .unwrap();
    wait_for_marker(&source, &target, Duration::from_secs(30))
        .await
        .unwrap();
    let moved = subscription::origin_progress(&target, &enabled.origin)
        .await
        .unwrap()
        .unwrap();
    assert!(moved > range.clone_lsn, "origin follows the stream");

    let prepared_again = prepare_source::run(&mut source, &spec).await.unwrap();
    assert!(
        prepared_again.slot_created,
        "an active slot consumed by our subscription is ours"
    );
    let range_after = clone_lsn::run(
        &env.plane,
        &source,
        &target,
        &spec,
        &info,
        prepared.consistent_lsn,
    )
    .await
    .unwrap();
    assert!(range_after.already_attached);
    assert_eq!(
        clean_inherited::run(&target, &spec).await.unwrap(),
        clean_inherited::Cleaned::default()
    );
    assert!(
        !create_subscription::run(&target, &spec, &conninfo)
            .await
            .unwrap()
            .created_now
    );
    let enabled_again = advance_and_enable::run(&target, &spec, range.clone_lsn)
        .await
        .unwrap();
    assert!(!enabled_again.advanced_now && !enabled_again.enabled_now);
    assert!(enabled_again.origin_lsn >= moved, "origin moved backwards");
    let second_verify = verify::run(&source, &target, &spec, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(second_verify.slot_active && second_verify.apply_worker_pid > 0);

    let (slots, publications) = slots_and_publications(&source).await;
    assert_eq!(slots, vec![spec.slot.to_string()]);
    assert_eq!(publications, vec![spec.publication.to_string()]);
    assert_eq!(subscription::subscriptions(&target).await.unwrap().len(), 1);

    // Still replicating after all that.
    source
        .batch_execute("DELETE FROM public.accounts WHERE owner = 'after enable'")
        .await
        .unwrap();
    wait_for_marker(&source, &target, Duration::from_secs(30))
        .await
        .unwrap();
    let left: i64 = target
        .query_one(
            "SELECT count(*) FROM public.accounts WHERE owner = 'after enable'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // Cleanup twice: the second finds nothing to do and succeeds.
    let created = UndoPlan {
        publication: true,
        slot: true,
        clone: Some(info.clone_id.clone()),
        subscription: true,
        share: None,
    };
    let report = cleanup::run(&env.plane, &source, Some(&target), &spec, &created)
        .await
        .unwrap();
    assert!(report.slot_dropped && report.publication_dropped && report.clone_deleted);
    drop(target);
    let report_again = cleanup::run(&env.plane, &source, None, &spec, &created)
        .await
        .unwrap();
    assert_eq!(report_again, cleanup::CleanupReport::default());
    assert_eq!(slots_and_publications(&source).await, (vec![], vec![]));
    assert!(env.clone_dirs().is_empty());
}
