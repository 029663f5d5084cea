//! The built-in scenarios `dataverse-mi fake` serves work with the example specs made for them, over loopback HTTP
//! as the shell uses them.
#![cfg(all(feature = "testkit", feature = "spec-toml"))]

use dataverse_mi::provision::{ProvisionOptions, ProvisionSpec};
use dataverse_mi::testkit::{FakeOptions, SCENARIOS, Seed};

#[tokio::test]
async fn every_scenario_provisions_and_verifies_with_its_example_spec() {
    for (name, spec) in SCENARIOS {
        let fake = Seed::scenario(name).unwrap().build(FakeOptions::default()).unwrap();
        let server = fake.start().await;
        let spec = ProvisionSpec::from_file(format!("{}/{spec}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let engine = server.provisioner(&spec, ProvisionOptions::default()).unwrap().provisioner;
        let plan = engine.plan(&spec).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!plan.is_empty(), "{name}");
        let report = engine.apply(&plan).await;
        assert!(report.is_success(), "{name}: {report}");
        let verify = engine.verify(&spec).await.unwrap();
        assert!(verify.is_ok(), "{name}: {verify}");
        assert!(engine.plan(&spec).await.unwrap().is_empty(), "{name}: a re-run has nothing to do");
        // The production path: reads went in batches.
        assert!(fake.requests().iter().any(|r| r.is_batch()), "{name}: no batch was sent");
    }
}
