//! The hypercall test suite runs in the guest under KVM; any failed case
//! fails this test.

mod common;

#[test]
fn every_hypercall_case_passes() {
    let r = common::vkernel(&["test"]);
    let closing = r
        .stdout
        .lines()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no closing line\n{}\n{}", r.stdout, r.stderr))
        .to_string();
    let failures: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("not ok"))
        .collect();
    assert!(
        failures.is_empty(),
        "failed cases:\n{}\n--- stderr\n{}",
        failures.join("\n"),
        r.stderr
    );
    let passed: u32 = closing.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 60, "only {passed} cases ran: {closing}");
    assert_eq!(closing, format!("{passed} passed, 0 failed"));
    r.expect_code(0);
}
