//! The verbs that change an estate: plan, apply, verify, rotate, upgrade, destroy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::*;
use crate::support::*;
use dataverse_mi::provision::{ApplyOutcome, DestroyOptions, ProvisionSpec, UpgradeOptions, VerifyOptions};

/// Plans the spec, and stores the plan with `--out`.
pub(crate) fn plan_command(args: SpecArgs, out: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let plan = runtime()?.block_on(engine.plan(&spec))?;
    if let Some(out) = &out {
        std::fs::write(out, plan.to_stored()?).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!("plan written to {}; apply it with `dataverse-mi apply {}`", out.display(), out.display());
    }
    show(args.output, &plan)?;
    Ok(ExitCode::SUCCESS)
}

/// Plans and applies the spec, or applies a stored plan once a fresh plan of its spec does the same.
pub(crate) fn apply_command(stored: Option<PathBuf>, args: SpecArgs, yes: bool) -> Result<ExitCode, Failure> {
    let stored: Option<dataverse_mi::provision::Plan> = match &stored {
        Some(_) if args.file.is_some() => {
            return Err("give either a plan file or -f spec.toml, not both".into());
        }
        Some(path) => {
            let text = dataverse_mi::files::read_bounded(path, dataverse_mi::files::MAX_PLAN_FILE, "plan")?;
            Some(dataverse_mi::provision::Plan::from_stored(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let (spec, engine) = match &stored {
        Some(plan) => engine_for_spec(&args, plan.spec())?,
        None => engine_for(&args)?,
    };
    let rt = runtime()?;
    let Some(plan) = stored else {
        return plan_and_apply(&engine, &spec, args.output, yes, &rt, Step::Apply);
    };
    // A stored plan is applied exactly as it is, once a fresh plan of its spec is checked to do the same.
    let approval = Approval::new(args.output, yes);
    let outcome = if plan.is_empty() {
        ApplyOutcome::new(plan, None)
    } else if approval.ask(&plan, &format!("apply {} change(s)?", plan.actions.len())) {
        let report = rt.block_on(engine.apply_if_current(&plan))?;
        ApplyOutcome::new(plan, Some(report))
    } else {
        ApplyOutcome::new(plan, None)
    };
    approval.result()?;
    print_outcome(&outcome, args.output)
}

/// Checks every component against the platform and the FICs.
pub(crate) fn verify_command(args: SpecArgs, expiry_days: u64) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options = VerifyOptions::default().warn_within(Duration::from_secs(expiry_days.saturating_mul(86_400)));
    let report = runtime()?.block_on(engine.verify_with(&spec, options))?;
    show(args.output, &report)?;
    if !report.is_ok() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// A certificate rotation: add the new certificate, then finish (remove the old one's FICs).
pub(crate) fn rotate_command(
    args: SpecArgs,
    add: Option<PathBuf>,
    finish: Option<PathBuf>,
    environments: Vec<String>,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let rt = runtime()?;
    let chosen: Vec<&str> = environments.iter().map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|u| !spec.environments.iter().any(|e| e.is_at(u))) {
        return Err(format!("--environment {unknown} is not one of the spec's environments").into());
    }
    let rotating = match (&add, &finish) {
        (Some(new), _) => spec.adding_certificate_in(certificate_arg(new)?, &chosen),
        (None, Some(new)) => spec.finishing_rotation_in(certificate_arg(new)?, &chosen),
        (None, None) => {
            return Err("say what to do: rotate --add NEW.cer, then rotate --finish NEW.cer".into());
        }
    };
    let code = plan_and_apply(
        &engine,
        &rotating,
        args.output,
        yes,
        &rt,
        if finish.is_some() { Step::Finish } else { Step::Apply },
    )?;
    if add.is_some() && code == ExitCode::SUCCESS && matches!(args.output, Output::Text) {
        eprintln!(
            "next: sign the plug-ins with the new certificate and register them again; `dataverse-mi verify` shows which are; then `dataverse-mi rotate --finish` with the same certificate"
        );
    }
    Ok(code)
}

/// The subject format upgrade ([`Provisioner::upgrade`]), and the spec file told its new version.
pub(crate) fn upgrade_command(
    args: SpecArgs,
    finish: bool,
    revert: bool,
    yes: bool,
    write_spec: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options = UpgradeOptions::default().finishing(finish).reverting(revert);
    let approval = Approval::new(args.output, yes);
    let outcome = runtime()?.block_on(
        engine.upgrade(&spec, options, |plan| approval.ask(plan, &format!("apply {} change(s)?", plan.actions.len()))),
    )?;
    approval.result()?;
    match args.output {
        Output::Json => print_json(&outcome)?,
        Output::Text => {
            let stages = [Some(&outcome.switch), outcome.finish.as_ref()];
            for stage in stages.into_iter().flatten().filter(|s| !s.declined()) {
                println!("{}", stage.report.as_ref().map(|r| r.to_string()).unwrap_or_else(|| stage.plan.to_string()));
            }
            if let Some(report) = outcome.verify.as_ref().filter(|v| !v.is_ok()) {
                println!("{report}");
            }
        }
    }
    // The spec must say the version the rows now have, or the next `verify` fails and the next `apply`
    // leaves the rows alone with a note.
    let target = outcome.target;
    if outcome.spec_is_behind(&spec) {
        let path = args.file.as_deref().unwrap_or(std::path::Path::new("spec"));
        if write_spec {
            let text = dataverse_mi::files::read_bounded_text(path, dataverse_mi::files::MAX_SPEC_FILE, "spec")?;
            let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let written = ProvisionSpec::with_version_written(&text, target, json);
            std::fs::write(path, written).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote `version = {target}` into {}", path.display());
        } else {
            eprintln!(
                "the rows are at version {target} now: set `version = {target}` in {} (or run again with --write-spec)",
                path.display()
            );
        }
    }
    if let Some(problem) = outcome.problem() {
        eprintln!("{problem}");
        let verify_failed = outcome.verify.as_ref().is_some_and(|v| !v.is_ok());
        return Ok(ExitCode::from(if verify_failed { 2 } else { 1 }));
    }
    if !finish && !revert && matches!(args.output, Output::Text) {
        eprintln!(
            "next: check the plug-ins (`dataverse-mi verify`), then `dataverse-mi upgrade --finish` removes the version 1 FICs"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The teardown ([`Provisioner::destroy_approved`]).
pub(crate) fn destroy_command(
    args: SpecArgs,
    role_assignments: bool,
    access: bool,
    identity: bool,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let (spec, engine) = engine_for(&args)?;
    let options =
        DestroyOptions::default().with_role_assignments(role_assignments).with_access(access).with_identity(identity);
    let approval = Approval::new(args.output, yes);
    let outcome = runtime()?.block_on(engine.destroy_approved(&spec, options, |plan| {
        // Asked for JSON and not told to go ahead: the plan, for a script to read, and nothing deleted.
        if !yes && matches!(args.output, Output::Json) {
            return false;
        }
        approval.ask(plan, &format!("delete {} thing(s)?", plan.steps.len()))
    }))?;
    approval.result()?;
    match (args.output, &outcome.report) {
        (Output::Json, None) if outcome.declined() && !yes => {
            print_json(&outcome.plan)?;
            eprintln!("nothing deleted (--yes to delete)");
        }
        (Output::Json, None) if outcome.declined() => eprintln!("nothing deleted"),
        (Output::Json, None) => print_json(&outcome.plan)?,
        (Output::Json, Some(_)) => print_json(&outcome)?,
        (Output::Text, Some(report)) => println!("{report}"),
        (Output::Text, None) if outcome.declined() => eprintln!("nothing deleted"),
        (Output::Text, None) => println!("{}", outcome.plan),
    }
    if !outcome.is_success() || outcome.declined() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
