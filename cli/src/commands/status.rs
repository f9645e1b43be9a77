//! `hex-cli status [NAME]`: a HexCoreService as the cluster sees it (conditions, the catalog
//! each replica serves against the one delivered, failed models, pods that do not run, recent
//! Events), or one line per HexCoreService. Exits 1 when one is not Ready, so scripts can gate
//! on it.

use std::path::PathBuf;

use clap::Args;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::json;

use crate::Context;
use crate::cluster::{self, Target, request_error};
use crate::error::CliError;
use crate::hcs_status::{self, INSTANCE_LABEL, ServiceReport, SummaryRow, age_of, short_age};
use crate::output::{Output, OutputMode};

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 Ready (every listed HexCoreService, without NAME); 1 not Ready; 2 usage or \
                  kubeconfig error; 3 the API server refused (not found, forbidden); 4 the API server cannot be reached.\n\n\
                  Examples:\n  hex-cli status passports -n hex\n  hex-cli status -A -o table\n  \
                  hex-cli status passports --context prod -o json | jq '.replicaStatuses[].catalogSha256'"
)]
pub struct StatusArgs {
    /// The HexCoreService; without it, one line per HexCoreService of the namespace.
    name: Option<String>,
    /// Namespace (default: the kubeconfig context's, else `default`; in a pod, the pod's).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Every namespace (only without NAME).
    #[arg(long, short = 'A', conflicts_with_all = ["name", "namespace"])]
    all_namespaces: bool,
    /// Kubeconfig file (default: KUBECONFIG, else ~/.kube/config, else the pod's service account).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// How many of the newest Events to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    events: usize,
}

/// Events read per request (the list is paged).
const EVENT_PAGE: u32 = 500;
/// Events read at most, newest pages last (a namespace with more is a noisy one).
const EVENT_PAGES: usize = 10;

pub async fn run(args: StatusArgs, ctx: &Context) -> Result<(), CliError> {
    let target = Target {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let (client, default_namespace) = cluster::connect(&target, ctx.timeout).await?;
    let namespace = args.namespace.clone().unwrap_or(default_namespace);
    if ctx.verbose {
        eprintln!("hex-cli: reading HexCoreServices in namespace {namespace}");
    }
    match &args.name {
        Some(name) => one(&client, &namespace, name, args.events, ctx).await,
        None => list(&client, (!args.all_namespaces).then_some(namespace.as_str()), ctx).await,
    }
}

fn hcs_api(client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = hcs_status::hcs_resource();
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// A 404 on the collection itself: the API server does not know the resource.
fn crd_missing(message: &str) -> CliError {
    CliError::Kubernetes {
        status: 404,
        message: format!(
            "the API server does not serve hexcoreservices.hex-core.dev/v1alpha1 ({message}): are the hex-core CRDs \
             installed (crds/ or the hex-core-operator chart)?"
        ),
    }
}

async fn one(client: &Client, namespace: &str, name: &str, max_events: usize, ctx: &Context) -> Result<(), CliError> {
    let hcs = match hcs_api(client, Some(namespace)).get(name).await {
        Ok(hcs) => hcs,
        // A missing object names itself in the Status details; a missing resource type does not.
        Err(kube::Error::Api(status)) if status.code == 404 => {
            let about_object = status.details.as_ref().is_some_and(|d| d.name == name);
            return Err(if about_object {
                CliError::Kubernetes {
                    status: 404,
                    message: format!("HexCoreService {namespace}/{name} not found"),
                }
            } else {
                crd_missing(&status.message)
            });
        }
        Err(e) => return Err(request_error(&format!("get HexCoreService {namespace}/{name}"), e)),
    };
    let mut warnings = Vec::new();
    let selector = hcs.data["status"]["selector"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{INSTANCE_LABEL}={name}"));
    let pods: Vec<Pod> = match Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            warnings.push(request_error(&format!("list pods {selector}"), e).to_string());
            Vec::new()
        }
    };
    let events = match namespace_events(client, namespace).await {
        Ok(events) => events,
        Err(e) => {
            warnings.push(e.to_string());
            Vec::new()
        }
    };
    let report = hcs_status::service_report(&hcs, &pods, &events, max_events, Timestamp::now()).map_err(|e| {
        CliError::UnexpectedObject(format!(
            "HexCoreService {namespace}/{name}: {e}; is this hex-cli older than the operator?"
        ))
    })?;
    if ctx.output.mode == OutputMode::Json {
        let mut value = serde_json::to_value(&report).expect("the report serialises");
        value["warnings"] = json!(warnings);
        ctx.output.json(&value);
    } else {
        print_report(&report, &ctx.output);
        for warning in &warnings {
            eprintln!("hex-cli: warning: {warning}");
        }
    }
    if report.ready {
        Ok(())
    } else {
        Err(CliError::NotReady(format!(
            "HexCoreService {namespace}/{name} is not Ready: {}",
            report.reason
        )))
    }
}

/// The Events of `namespace` (one paged list; which ones concern the service is decided by
/// `hcs_status`, since Events about replaced pods and ReplicaSets count too).
async fn namespace_events(client: &Client, namespace: &str) -> Result<Vec<Event>, CliError> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut events = Vec::new();
    let mut params = ListParams::default().limit(EVENT_PAGE);
    for _ in 0..EVENT_PAGES {
        let page = api
            .list(&params)
            .await
            .map_err(|e| request_error(&format!("list events in {namespace}"), e))?;
        events.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(events)
}

async fn list(client: &Client, namespace: Option<&str>, ctx: &Context) -> Result<(), CliError> {
    let where_ = namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
    let items = match hcs_api(client, namespace).list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(status)) if status.code == 404 => return Err(crd_missing(&status.message)),
        Err(e) => return Err(request_error(&format!("list HexCoreServices in {where_}"), e)),
    };
    let now = Timestamp::now();
    let mut rows: Vec<SummaryRow> = items.iter().map(|h| hcs_status::summary_row(h, now)).collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if ctx.output.mode == OutputMode::Json {
        ctx.output.json(&json!({"items": rows}));
    } else if rows.is_empty() {
        eprintln!("hex-cli: no HexCoreService in {where_}");
    } else {
        print_summary(&rows, namespace.is_none(), &ctx.output);
    }
    let not_ready: Vec<String> = rows
        .iter()
        .filter(|r| !r.ready)
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    if not_ready.is_empty() {
        Ok(())
    } else {
        Err(CliError::NotReady(format!("not Ready: {}", not_ready.join(", "))))
    }
}

// -------------------------------------------------------------------------------------------
// Tables
// -------------------------------------------------------------------------------------------

fn or_dash(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The first 12 hex digits, as the operator's own messages print a catalog hash.
fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn print_summary(rows: &[SummaryRow], with_namespace: bool, out: &Output) {
    let mut headers = vec!["NAME", "READY", "REASON", "REPLICAS", "CATALOG", "FAILED", "AGE"];
    if with_namespace {
        headers.insert(0, "NAMESPACE");
    }
    let table = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.name.clone(),
                if r.ready { out.ok("True") } else { out.bad("False") },
                r.reason.clone(),
                format!("{}/{}", or_dash(r.ready_replicas), r.desired_replicas),
                or_dash(r.catalog_convergence.as_ref()),
                r.failed_entries.to_string(),
                r.age_seconds.map(short_age).unwrap_or_else(|| "-".into()),
            ];
            if with_namespace {
                row.insert(0, r.namespace.clone());
            }
            row
        })
        .collect();
    out.table(&headers, table);
}

fn section(out: &Output, title: &str) {
    println!("\n{}", out.bold(title));
}

fn print_report(r: &ServiceReport, out: &Output) {
    let now = Timestamp::now();
    let verdict = if r.ready { out.ok("Ready") } else { out.bad("Not Ready") };
    println!(
        "{} {}/{}: {verdict} ({})",
        out.bold("HexCoreService"),
        r.namespace,
        r.name,
        r.reason
    );
    if !r.message.is_empty() {
        println!("  {}", r.message);
    }
    println!();
    let mut pairs = vec![
        (
            "replicas",
            format!(
                "{} desired, {} ready, {} serving the catalog",
                r.desired_replicas,
                or_dash(r.ready_replicas),
                or_dash(r.converged_replicas)
            ),
        ),
        ("catalog", or_dash(r.catalog_sha256.as_ref())),
        ("convergence", or_dash(r.catalog_convergence.as_ref())),
        (
            "catalogs",
            if r.catalogs.is_empty() {
                "-".into()
            } else {
                r.catalogs.join(", ")
            },
        ),
        ("image", or_dash(r.image.as_ref())),
        (
            "last refresh",
            match &r.last_refresh_time {
                Some(t) => format!("{t} ({} ago)", age_of(Some(t), now)),
                None => "-".into(),
            },
        ),
        (
            "generation",
            format!(
                "{} (status describes {})",
                or_dash(r.generation),
                or_dash(r.observed_generation)
            ),
        ),
    ];
    if r.paused {
        pairs.push(("paused", "yes: the operator changes nothing but the status".into()));
    }
    out.pairs(&pairs);

    section(out, "Conditions");
    out.table(
        &["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
        r.conditions
            .iter()
            .map(|c| {
                // Ready/CatalogSynced want True; Degraded/Progressing/Paused are good when False.
                let good = matches!(c.type_.as_str(), "Ready" | "CatalogSynced") == (c.status == "True");
                vec![
                    c.type_.clone(),
                    if good { out.ok(&c.status) } else { out.warn(&c.status) },
                    or_dash(c.reason.as_ref()),
                    age_of(c.last_transition_time.as_deref(), now),
                    c.message.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    );

    section(out, "Replicas");
    if r.replica_statuses.is_empty() {
        println!("(none reported)");
    } else {
        out.table(
            &["POD", "ADDRESS", "READY", "CONVERGED", "CATALOG", "VERSION", "NOTE"],
            r.replica_statuses
                .iter()
                .map(|rep| {
                    let catalog = match (&rep.catalog_sha256, rep.catalog_matches) {
                        (Some(sha), Some(false)) => out.warn(&format!("{} (not the delivered one)", short_sha(sha))),
                        (Some(sha), _) => short_sha(sha).to_string(),
                        (None, _) => "-".into(),
                    };
                    let note = rep
                        .error
                        .clone()
                        .or_else(|| rep.not_ready_reason.clone())
                        .unwrap_or_default();
                    vec![
                        or_dash(rep.pod.as_ref()),
                        or_dash(rep.address.as_ref()),
                        yes_no(rep.ready).into(),
                        yes_no(rep.converged).into(),
                        catalog,
                        or_dash(rep.version.as_ref()),
                        note,
                    ]
                })
                .collect(),
        );
        if r.omitted_replica_statuses > 0 {
            println!("(and {} more replicas)", r.omitted_replica_statuses);
        }
    }

    let failed: Vec<Vec<String>> = r
        .replica_statuses
        .iter()
        .flat_map(|rep| {
            rep.failed_entries.iter().map(move |f| {
                vec![
                    or_dash(rep.pod.as_ref().or(rep.address.as_ref())),
                    format!("{}@{}", f.model, f.version),
                    or_dash(f.state.as_ref()),
                    or_dash(f.artifact.as_ref()),
                    match f.transient {
                        Some(true) => "yes (retried by the replica)".into(),
                        Some(false) => "no (until the catalog or artifact changes)".into(),
                        None => "-".into(),
                    },
                    f.since.as_deref().map_or("-".into(), |s| age_of(Some(s), now)),
                    f.error.clone().unwrap_or_default(),
                ]
            })
        })
        .collect();
    let omitted_failed: i64 = r.replica_statuses.iter().map(|rep| rep.omitted_failed_entries).sum();
    if !failed.is_empty() || omitted_failed > 0 {
        section(out, "Failed models");
        out.table(
            &["POD", "MODEL", "STATE", "ARTIFACT", "TRANSIENT", "SINCE", "ERROR"],
            failed,
        );
        if omitted_failed > 0 {
            println!("(and {omitted_failed} more failed entries)");
        }
    }

    section(out, "Pods");
    if r.pods.is_empty() {
        println!("(none)");
    } else {
        out.table(
            &["NAME", "PHASE", "READY", "RESTARTS", "PROBLEM"],
            r.pods
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.phase.clone(),
                        yes_no(p.ready).into(),
                        p.restarts.to_string(),
                        p.problem.as_deref().map_or(String::new(), |m| out.bad(m)),
                    ]
                })
                .collect(),
        );
    }

    section(out, "Events");
    if r.events.is_empty() {
        println!("(none)");
    } else {
        out.table(
            &["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            r.events
                .iter()
                .map(|e| {
                    let count = if e.count > 1 {
                        format!(" (x{})", e.count)
                    } else {
                        String::new()
                    };
                    vec![
                        e.age_seconds.map(short_age).unwrap_or_else(|| "-".into()) + &count,
                        if e.type_ == "Warning" {
                            out.warn(&e.type_)
                        } else {
                            e.type_.clone()
                        },
                        e.reason.clone(),
                        e.object.clone(),
                        e.message.clone(),
                    ]
                })
                .collect(),
        );
    }
}
