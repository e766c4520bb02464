//! IAM as AWS enforces it, for the local run: every AWS call a function
//! makes is evaluated against that function's policy in `template.yaml`
//! (built in), and refused with `AccessDeniedException` when the policy
//! does not allow it, as AWS would.
//!
//! - **Who calls**: the Lambda endpoint runs each handler inside
//!   [`as_function`], so a call knows its function. Calls made outside a
//!   function (the runtime starting executions, the test harness) are the
//!   operator's and are not checked.
//! - **Which calls**: the SDK calls that reach moto (DynamoDB, Step
//!   Functions, S3) pass through [`EnforcingHttpClient`], which reads the
//!   action and resource from the request (S3: a `GetObject` of a missing
//!   key is `AccessDenied`, not `NoSuchKey`, unless the role may also
//!   `s3:ListBucket` the bucket, as S3 answers); the RDS, RAM and Secrets
//!   Manager calls the local cloud plays are authorized by the local cloud
//!   itself ([`Enforcer::authorize`]) with the actions, resources and
//!   condition keys the AWS adapter's calls carry.
//! - **Which role**: a function's own role in the target account; calls
//!   about the source cluster go through the source stack's role, reached
//!   with `sts:AssumeRole`, which the function's role must allow too.
//! - **What is evaluated**: `Allow` and `Deny` statements, `Action` and
//!   `NotAction` with wildcards, `Resource` patterns with the template's
//!   `!Sub`, `!Ref`, `!GetAtt` and `!If` resolved for the local account and
//!   Region, and conditions (`StringEquals`, `StringLike`, `ArnLike`,
//!   `Null`, their `Not`/`IfExists` forms and `ForAllValues`/`ForAnyValue`)
//!   on the keys each call carries. A key a call does not carry fails the
//!   condition, as in IAM.
//!
//! What it does not model: SCPs, permission boundaries, resource policies
//! (none are used), and the calls the Lambda service makes for a function
//! (its network interfaces, its logs).

pub mod calls;
pub mod machines;

use clonesync::error::{Error, Result};
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The source stack's role, which the functions assume for calls about
/// the source cluster.
pub const SOURCE_ROLE: &str = "SourceAccessRole";

/// The template the deployment uses, built in.
pub const TEMPLATE: &str = include_str!("../../template.yaml");

tokio::task_local! {
    static FUNCTION: String;
}

/// Run `work` as `function` (its package name): its AWS calls are checked
/// against that function's role.
pub async fn as_function<F: std::future::Future>(function: &str, work: F) -> F::Output {
    FUNCTION.scope(function.to_string(), work).await
}

/// The function whose handler is running, if any.
pub fn current_function() -> Option<String> {
    FUNCTION.try_with(Clone::clone).ok()
}

/// Which account's credentials a call is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// The function's own role.
    Target,
    /// The source stack's role, assumed by the function.
    Source,
}

/// One authorization request: an action on a resource with the condition
/// keys the call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(action: &str, resource: impl Into<String>) -> Request {
        Request {
            action: action.to_string(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, values: &[&str]) -> Request {
        self.context.insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }
}

/// A call as it was evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub function: String,
    pub account: Account,
    pub request: Request,
    /// The statement that allowed it (`<Sid>` or `#<index>`); `None`:
    /// denied.
    pub allowed_by: Option<String>,
}

/// One IAM statement, resolved.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: String,
    allow: bool,
    actions: Vec<String>,
    not_actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

/// Every role's statements: each function's (by package name) and the
/// source stack's role.
#[derive(Debug, Clone)]
pub struct Policies {
    pub functions: BTreeMap<String, Vec<Statement>>,
    pub source_role: Vec<Statement>,
    /// Each state machine's role and definition, by its name.
    pub machines: BTreeMap<String, machines::Machine>,
}

/// What the template's references resolve to in a local run.
#[derive(Debug, Clone)]
pub struct Substitutions {
    pub region: String,
    /// One account plays source and target locally.
    pub account: String,
    pub registry_table: String,
    pub source_role_arn: String,
    pub source_cluster_arn: String,
    pub source_secret_arn: String,
    pub stack_name: String,
    pub runs_bucket: String,
    /// The template's functions, logical id → name (`clonesync-<package>`
    /// locally): what `!Ref <Function>` and `!GetAtt <Function>.Arn` give.
    pub functions: BTreeMap<String, String>,
}

impl Substitutions {
    pub fn local(
        region: &str,
        account: &str,
        registry_table: &str,
        runs_bucket: &str,
    ) -> Substitutions {
        Substitutions {
            region: region.into(),
            account: account.into(),
            registry_table: registry_table.into(),
            source_role_arn: format!("arn:aws:iam::{account}:role/clonesync-source"),
            // One local runtime serves any source of the account.
            source_cluster_arn: format!("arn:aws:rds:{region}:{account}:cluster:*"),
            source_secret_arn: format!(
                "arn:aws:secretsmanager:{region}:{account}:secret:clonesync-local-source-AbCdEf"
            ),
            stack_name: "clonesync".into(),
            runs_bucket: runs_bucket.into(),
            functions: BTreeMap::new(),
        }
    }

    fn registry_arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.region, self.account, self.registry_table
        )
    }

    /// A parameter's or pseudo parameter's value.
    fn parameter(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" | "SourceAccountId" | "TargetAccountId" => self.account.clone(),
            "AWS::StackName" => self.stack_name.clone(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "SourceRoleArn" => self.source_role_arn.clone(),
            "SourceClusterArn" => self.source_cluster_arn.clone(),
            "SourceSecretArn" => self.source_secret_arn.clone(),
            "Registry" => self.registry_table.clone(),
            "Registry.Arn" => self.registry_arn(),
            "RunsBucket" => self.runs_bucket.clone(),
            "RunsBucket.Arn" => format!("arn:aws:s3:::{}", self.runs_bucket),
            "ExternalId" | "AlarmTopicArn" | "RdsCaBundleLayerArn" => String::new(),
            "Side" => "target".into(),
            other => {
                if let Some(logical) = other.strip_suffix(".Arn") {
                    let function = self.functions.get(logical)?;
                    return Some(format!(
                        "arn:aws:lambda:{}:{}:function:{function}",
                        self.region, self.account
                    ));
                }
                return self.functions.get(other).cloned();
            }
        })
    }
}

pub(crate) fn invalid(reason: String) -> Error {
    Error::LocalDefinitionInvalid { reason }
}

/// Resolve a template value to text: plain strings, `!Sub`, `!Ref`,
/// `!GetAtt`, `!Join` and `!If` (on the template's conditions).
pub(crate) fn text(
    value: &Yaml,
    subs: &Substitutions,
    conditions: &HashMap<String, bool>,
) -> Result<String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            match tag.trim_start_matches('!') {
                "Ref" => {
                    let name = t.value.as_str().unwrap_or_default();
                    subs.parameter(name)
                        .ok_or_else(|| invalid(format!("template: !Ref {name} has no local value")))
                }
                "GetAtt" => {
                    let name = match &t.value {
                        Yaml::String(s) => s.clone(),
                        Yaml::Sequence(parts) => parts
                            .iter()
                            .filter_map(Yaml::as_str)
                            .collect::<Vec<_>>()
                            .join("."),
                        _ => String::new(),
                    };
                    subs.parameter(&name).ok_or_else(|| {
                        invalid(format!("template: !GetAtt {name} has no local value"))
                    })
                }
                "Sub" => {
                    let pattern = t.value.as_str().ok_or_else(|| {
                        invalid("template: only the one-argument !Sub is modeled".into())
                    })?;
                    substitute(pattern, subs)
                }
                "Join" => {
                    let parts = t.value.as_sequence().cloned().unwrap_or_default();
                    let separator = parts.first().and_then(Yaml::as_str).unwrap_or_default();
                    let items = match parts.get(1) {
                        Some(Yaml::Sequence(items)) => items
                            .iter()
                            .map(|i| text(i, subs, conditions))
                            .collect::<Result<Vec<_>>>()?,
                        _ => Vec::new(),
                    };
                    Ok(items.join(separator))
                }
                "If" => {
                    let branch = chosen(&t.value, conditions)?;
                    text(branch, subs, conditions)
                }
                other => Err(invalid(format!("template: !{other} is not modeled"))),
            }
        }
        other => Err(invalid(format!("template: {other:?} is not text"))),
    }
}

/// `!If [Condition, then, else]`: the branch the condition picks.
fn chosen<'a>(value: &'a Yaml, conditions: &HashMap<String, bool>) -> Result<&'a Yaml> {
    let parts = value
        .as_sequence()
        .filter(|p| p.len() == 3)
        .ok_or_else(|| invalid("template: !If needs [condition, then, else]".into()))?;
    let name = parts[0].as_str().unwrap_or_default();
    let holds = conditions
        .get(name)
        .copied()
        .ok_or_else(|| invalid(format!("template: condition {name} is not defined")))?;
    Ok(if holds { &parts[1] } else { &parts[2] })
}

fn is_no_value(value: &Yaml) -> bool {
    matches!(value, Yaml::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Ref"
        && t.value.as_str() == Some("AWS::NoValue"))
}

fn substitute(pattern: &str, subs: &Substitutions) -> Result<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| invalid(format!("template: unclosed ${{ in {pattern}")))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            out.push_str(
                &subs
                    .parameter(name)
                    .ok_or_else(|| invalid(format!("template: ${{{name}}} has no local value")))?,
            );
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The template's `Conditions`, evaluated for the target side of a local
/// run (`Equals`, `Not`, `And`, `Or`, `Condition`).
fn conditions(template: &Yaml, subs: &Substitutions) -> Result<HashMap<String, bool>> {
    fn eval(
        value: &Yaml,
        all: &serde_yaml::Mapping,
        subs: &Substitutions,
        depth: usize,
    ) -> Result<bool> {
        if depth > 16 {
            return Err(invalid("template: conditions nest too deep".into()));
        }
        let Yaml::Tagged(t) = value else {
            return Err(invalid(format!("template: condition {value:?}")));
        };
        let args = t.value.as_sequence().cloned().unwrap_or_default();
        match t.tag.to_string().trim_start_matches('!') {
            "Equals" => {
                let none = HashMap::new();
                let values = args
                    .iter()
                    .map(|a| text(a, subs, &none))
                    .collect::<Result<Vec<_>>>()?;
                Ok(values.len() == 2 && values[0] == values[1])
            }
            "Not" => Ok(!eval(
                args.first().unwrap_or(&Yaml::Null),
                all,
                subs,
                depth + 1,
            )?),
            "And" => args
                .iter()
                .try_fold(true, |acc, a| Ok(acc && eval(a, all, subs, depth + 1)?)),
            "Or" => args
                .iter()
                .try_fold(false, |acc, a| Ok(acc || eval(a, all, subs, depth + 1)?)),
            "Condition" => {
                let name = t.value.as_str().unwrap_or_default();
                let other = all
                    .get(name)
                    .ok_or_else(|| invalid(format!("template: condition {name} is not defined")))?;
                eval(other, all, subs, depth + 1)
            }
            other => Err(invalid(format!("template: condition function !{other}"))),
        }
    }
    let Some(all) = template.get("Conditions").and_then(Yaml::as_mapping) else {
        return Ok(HashMap::new());
    };
    all.iter()
        .map(|(name, value)| {
            Ok((
                name.as_str().unwrap_or_default().to_string(),
                eval(value, all, subs, 0)?,
            ))
        })
        .collect()
}

fn strings(
    value: Option<&Yaml>,
    subs: &Substitutions,
    conditions: &HashMap<String, bool>,
) -> Result<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter(|i| !is_no_value(i))
            .map(|i| text(i, subs, conditions))
            .collect(),
        Some(one) => Ok(vec![text(one, subs, conditions)?]),
    }
}

pub(crate) fn statements(
    document: &Yaml,
    subs: &Substitutions,
    conditions: &HashMap<String, bool>,
) -> Result<Vec<Statement>> {
    let list = match document.get("Statement") {
        Some(Yaml::Sequence(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for (index, statement) in list.iter().enumerate() {
        let mut condition_list = Vec::new();
        let mut condition = statement.get("Condition").cloned();
        if let Some(Yaml::Tagged(t)) = &condition {
            if t.tag.to_string().trim_start_matches('!') == "If" {
                let branch = chosen(&t.value, conditions)?.clone();
                condition = (!is_no_value(&branch)).then_some(branch);
            }
        }
        if let Some(Yaml::Mapping(operators)) = condition {
            for (operator, keys) in operators {
                for (key, values) in keys.as_mapping().into_iter().flatten() {
                    condition_list.push(Condition {
                        operator: operator.as_str().unwrap_or_default().to_string(),
                        key: text(key, subs, conditions)?,
                        values: strings(Some(values), subs, conditions)?,
                    });
                }
            }
        }
        out.push(Statement {
            sid: statement
                .get("Sid")
                .and_then(Yaml::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{index}")),
            allow: statement.get("Effect").and_then(Yaml::as_str) != Some("Deny"),
            actions: strings(statement.get("Action"), subs, conditions)?,
            not_actions: strings(statement.get("NotAction"), subs, conditions)?,
            resources: strings(statement.get("Resource"), subs, conditions)?,
            conditions: condition_list,
        });
    }
    Ok(out)
}

impl Policies {
    /// Every role of `template` (YAML text), resolved with `subs`.
    pub fn from_template(template: &str, subs: &Substitutions) -> Result<Policies> {
        let template: Yaml = serde_yaml::from_str(template)
            .map_err(|e| invalid(format!("template.yaml does not parse: {e}")))?;
        let conditions = conditions(&template, subs)?;
        let resources = template
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| invalid("template.yaml has no Resources".into()))?;
        // Functions first: a state machine's role and substitutions name
        // them.
        let mut subs = subs.clone();
        for (logical, resource) in resources {
            if resource["Type"].as_str() == Some("AWS::Serverless::Function") {
                if let (Some(logical), Some(package)) = (
                    logical.as_str(),
                    resource["Properties"]["CodeUri"]
                        .as_str()
                        .and_then(|uri| uri.strip_prefix("target/lambda/")),
                ) {
                    subs.functions
                        .insert(logical.to_string(), format!("clonesync-{package}"));
                }
            }
        }
        let subs = &subs;
        let mut functions = BTreeMap::new();
        let mut source_role = Vec::new();
        let mut machines = BTreeMap::new();
        for (logical, resource) in resources {
            let properties = &resource["Properties"];
            match resource["Type"].as_str() {
                Some("AWS::Serverless::Function") => {
                    // CodeUri is the package `tools/build-lambdas` leaves,
                    // target/lambda/<package>.
                    let Some(name) = properties["CodeUri"]
                        .as_str()
                        .and_then(|uri| uri.strip_prefix("target/lambda/"))
                    else {
                        continue;
                    };
                    let mut list = Vec::new();
                    for policy in properties["Policies"].as_sequence().into_iter().flatten() {
                        // SAM policy templates (LambdaInvokePolicy) belong
                        // to the state machines' roles, not to functions.
                        if policy.get("Statement").is_some() {
                            list.extend(statements(policy, subs, &conditions)?);
                        }
                    }
                    functions.insert(name.to_string(), list);
                }
                Some("AWS::Serverless::StateMachine") => {
                    let machine = machines::Machine::from_template(properties, subs, &conditions)?;
                    machines.insert(machine.name.clone(), machine);
                }
                Some("AWS::IAM::Role") if logical.as_str() == Some(SOURCE_ROLE) => {
                    for policy in properties["Policies"].as_sequence().into_iter().flatten() {
                        source_role.extend(statements(
                            &policy["PolicyDocument"],
                            subs,
                            &conditions,
                        )?);
                    }
                }
                _ => {}
            }
        }
        Ok(Policies {
            functions,
            source_role,
            machines,
        })
    }

    /// The statement that allows `request` for this role; `None` when it
    /// is denied (explicitly or by default).
    pub fn decide(statements: &[Statement], request: &Request) -> Option<String> {
        let applies = |s: &Statement| {
            let action = if s.not_actions.is_empty() {
                s.actions.iter().any(|p| matches(p, &request.action, true))
            } else {
                !s.not_actions
                    .iter()
                    .any(|p| matches(p, &request.action, true))
            };
            action
                && s.resources
                    .iter()
                    .any(|p| matches(p, &request.resource, false))
                && s.conditions.iter().all(|c| c.holds(&request.context))
        };
        if statements.iter().any(|s| !s.allow && applies(s)) {
            return None;
        }
        statements
            .iter()
            .find(|s| s.allow && applies(s))
            .map(|s| s.sid.clone())
    }
}

/// IAM's wildcard match: `*` any run, `?` one character; actions ignore
/// case.
fn matches(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Condition {
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let mut operator = self.operator.as_str();
        let (for_all, for_any) = match operator.split_once(':') {
            Some(("ForAllValues", rest)) => {
                operator = rest;
                (true, false)
            }
            Some(("ForAnyValue", rest)) => {
                operator = rest;
                (false, true)
            }
            _ => (false, false),
        };
        let if_exists = operator.ends_with("IfExists");
        let operator = operator.trim_end_matches("IfExists");
        let present = context.get(&self.key);
        if operator == "Null" {
            let wants_absent = self.values.iter().any(|v| v == "true");
            return present.is_none() == wants_absent;
        }
        let Some(values) = present else {
            // A key the call does not carry: IfExists passes, ForAllValues
            // holds vacuously, anything else fails.
            return if_exists || for_all;
        };
        let one = |value: &str| -> bool {
            match operator {
                "StringEquals" | "ArnEquals" => self.values.iter().any(|p| p == value),
                "StringEqualsIgnoreCase" => {
                    self.values.iter().any(|p| p.eq_ignore_ascii_case(value))
                }
                "StringLike" | "ArnLike" => self.values.iter().any(|p| matches(p, value, false)),
                "StringNotEquals" | "ArnNotEquals" => self.values.iter().all(|p| p != value),
                "StringNotLike" | "ArnNotLike" => {
                    self.values.iter().all(|p| !matches(p, value, false))
                }
                "Bool" => self.values.iter().any(|p| p.eq_ignore_ascii_case(value)),
                // An operator not modeled never grants.
                _ => false,
            }
        };
        if for_all {
            values.iter().all(|v| one(v))
        } else if for_any {
            values.iter().any(|v| one(v))
        } else {
            values.len() == 1 && one(&values[0])
        }
    }
}

/// The policies of a run and every decision made, in order.
#[derive(Debug)]
pub struct Enforcer {
    policies: Policies,
    subs: Substitutions,
    decisions: Mutex<Vec<Decision>>,
}

impl Enforcer {
    pub fn new(policies: Policies, subs: Substitutions) -> Arc<Enforcer> {
        Arc::new(Enforcer {
            policies,
            subs,
            decisions: Mutex::new(Vec::new()),
        })
    }

    /// The built-in template's roles for a local run.
    pub fn local(
        region: &str,
        account: &str,
        registry_table: &str,
        runs_bucket: &str,
    ) -> Result<Arc<Enforcer>> {
        let subs = Substitutions::local(region, account, registry_table, runs_bucket);
        Ok(Enforcer::new(
            Policies::from_template(TEMPLATE, &subs)?,
            subs,
        ))
    }

    pub fn substitutions(&self) -> &Substitutions {
        &self.subs
    }

    /// Every decision so far.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The denials so far.
    pub fn denials(&self) -> Vec<Decision> {
        self.decisions()
            .into_iter()
            .filter(|d| d.allowed_by.is_none())
            .collect()
    }

    /// Authorize each of `calls` (all of them: IAM denies the first call
    /// it does not allow, and what the adapter does after it never runs).
    pub fn authorize_calls(&self, calls: &[calls::Call]) -> Result<()> {
        calls
            .iter()
            .try_for_each(|c| self.authorize(c.service, c.operation, c.account, &c.requests))
    }

    /// Authorize the current function's calls `requests`, made with
    /// `account`'s credentials (for the source account, the function must
    /// also be allowed to assume the source role). Outside a function:
    /// allowed, unrecorded. The first denial is `Aws.AccessDenied` naming
    /// the function, the role, the action and the resource.
    pub fn authorize(
        &self,
        service: &str,
        operation: &str,
        account: Account,
        requests: &[Request],
    ) -> Result<()> {
        let Some(function) = current_function() else {
            return Ok(());
        };
        let own = self
            .policies
            .functions
            .get(&function)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut checks: Vec<(Account, &[Statement], Request)> = Vec::new();
        if account == Account::Source {
            checks.push((
                Account::Target,
                own,
                Request::new("sts:AssumeRole", self.subs.source_role_arn.clone()),
            ));
        }
        let role = match account {
            Account::Target => own,
            Account::Source => self.policies.source_role.as_slice(),
        };
        checks.extend(requests.iter().map(|r| (account, role, r.clone())));
        let mut first_denial = None;
        for (account, statements, request) in checks {
            let allowed_by = Policies::decide(statements, &request);
            if allowed_by.is_none() && first_denial.is_none() {
                first_denial = Some((account, request.clone()));
            }
            self.decisions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Decision {
                    function: function.clone(),
                    account,
                    request,
                    allowed_by,
                });
        }
        match first_denial {
            None => Ok(()),
            Some((account, request)) => Err(Error::AwsAccessDenied {
                service: service.to_string(),
                operation: operation.to_string(),
                message: denial_message(&function, account, &request),
                cause: None,
            }),
        }
    }
}

/// AWS's wording, with the function the role belongs to.
pub fn denial_message(function: &str, account: Account, request: &Request) -> String {
    let role = match account {
        Account::Target => format!("the role of function {function}"),
        Account::Source => format!("the source role (assumed by function {function})"),
    };
    format!(
        "AccessDeniedException: {role} is not authorized to perform {} on resource {} because no identity-based policy allows it",
        request.action, request.resource
    )
}

/// The resource and context of a DynamoDB or Step Functions request, from
/// its JSON body (the protocols moto serves for clonesync).
pub fn sdk_request(
    target: &str,
    body: &serde_json::Value,
    subs: &Substitutions,
) -> Option<(String, String, Request)> {
    let (prefix, operation) = target.split_once('.')?;
    let service = if prefix.starts_with("DynamoDB") {
        "dynamodb"
    } else if prefix.starts_with("AWSStepFunctions") {
        "states"
    } else {
        return None;
    };
    let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
    let resource = match service {
        "dynamodb" => format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            subs.region,
            subs.account,
            field("TableName").unwrap_or("*")
        ),
        _ => field("executionArn")
            .or_else(|| field("stateMachineArn"))
            .unwrap_or("*")
            .to_string(),
    };
    let action = format!("{service}:{operation}");
    Some((
        service.to_string(),
        operation.to_string(),
        Request::new(&action, resource),
    ))
}

/// The action and resource of an S3 request as the SDK sends it to moto:
/// path-style (`/bucket/key`), the operation in its `x-id` query parameter
/// (`GetObject`, `PutObject`, ...). `None` for what is not S3.
pub fn s3_request(uri: &str) -> Option<(String, Request)> {
    let (path, query) = uri
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(uri)
        .split_once('?')?;
    let operation = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("x-id="))?
        .to_string();
    let decoded = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let resource = format!("arn:aws:s3:::{decoded}");
    Some((
        operation.clone(),
        Request::new(&format!("s3:{operation}"), resource),
    ))
}

/// S3's XML error, as its REST protocol returns it.
fn s3_error(status: u16, code: &str, message: &str) -> aws_smithy_runtime_api::http::Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    );
    let mut response = aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status code"),
        aws_smithy_types::body::SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/xml");
    response
}

/// An SDK HTTP client that refuses, with DynamoDB's and Step Functions'
/// `AccessDeniedException` (S3's `AccessDenied`), what the current
/// function's role does not allow, and passes the rest to `inner`.
#[derive(Debug, Clone)]
pub struct EnforcingHttpClient {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    enforcer: Arc<Enforcer>,
}

impl EnforcingHttpClient {
    pub fn new(
        inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
        enforcer: Arc<Enforcer>,
    ) -> EnforcingHttpClient {
        EnforcingHttpClient { inner, enforcer }
    }
}

#[derive(Debug)]
struct EnforcingConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    enforcer: Arc<Enforcer>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for EnforcingHttpClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(EnforcingConnector {
            inner: self.inner.http_connector(settings, components),
            enforcer: self.enforcer.clone(),
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for EnforcingConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
        if let Some((operation, call)) = s3_request(request.uri()) {
            let bucket_arn = call
                .resource
                .split_once('/')
                .map(|(bucket, _)| bucket.to_string())
                .unwrap_or_else(|| call.resource.clone());
            if let Err(denied) = self
                .enforcer
                .authorize("s3", &operation, Account::Target, &[call])
            {
                return HttpConnectorFuture::ready(Ok(s3_error(
                    403,
                    "AccessDenied",
                    &denied.to_string(),
                )));
            }
            if operation != "GetObject" || current_function().is_none() {
                return self.inner.call(request);
            }
            // A missing key: S3 says NoSuchKey only to a role that may list
            // the bucket, AccessDenied to any other.
            let enforcer = self.enforcer.clone();
            let answer = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                let response = answer.await?;
                if response.status().as_u16() != 404 {
                    return Ok(response);
                }
                match enforcer.authorize(
                    "s3",
                    "GetObject",
                    Account::Target,
                    &[Request::new("s3:ListBucket", bucket_arn)],
                ) {
                    Ok(()) => Ok(response),
                    Err(denied) => Ok(s3_error(403, "AccessDenied", &denied.to_string())),
                }
            });
        }
        let target = request
            .headers()
            .get("x-amz-target")
            .map(str::to_string)
            .unwrap_or_default();
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        if let Some((service, operation, call)) =
            sdk_request(&target, &body, self.enforcer.substitutions())
        {
            if let Err(denied) =
                self.enforcer
                    .authorize(&service, &operation, Account::Target, &[call])
            {
                let message = match &denied {
                    Error::AwsAccessDenied { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                let body = serde_json::json!({
                    "__type": "AccessDeniedException",
                    "message": message,
                })
                .to_string();
                let mut response = aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(400u16)
                        .expect("400 is a status code"),
                    aws_smithy_types::body::SdkBody::from(body),
                );
                response
                    .headers_mut()
                    .insert("content-type", "application/x-amz-json-1.0");
                response
                    .headers_mut()
                    .insert("x-amzn-errortype", "AccessDeniedException");
                return HttpConnectorFuture::ready(Ok(response));
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs() -> Substitutions {
        Substitutions::local(
            "eu-west-1",
            "123456789012",
            "clonesync-registry",
            "clonesync-runs",
        )
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(matches("rds:Describe*", "rds:describedbclusters", true));
        assert!(!matches("rds:Describe*", "rds:DeleteDBCluster", true));
        assert!(matches(
            "arn:aws:rds:*:1:cluster:clonesync-*",
            "arn:aws:rds:eu-west-1:1:cluster:clonesync-a",
            false
        ));
        assert!(!matches(
            "arn:aws:rds:*:1:cluster:clonesync-*",
            "arn:aws:rds:eu-west-1:1:cluster:other",
            false
        ));
        assert!(matches("a?c", "abc", false) && !matches("a?c", "ac", false));
        assert!(
            !matches("Arn", "arn", false),
            "resources are case-sensitive"
        );
    }

    #[test]
    fn conditions_fail_on_keys_a_call_does_not_carry() {
        let template = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: target/lambda/f
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Sid: Tagging
              Effect: Allow
              Action: ram:TagResource
              Resource: "*"
              Condition:
                StringEquals:
                  ram:RequestedResourceType: rds:Cluster
            - Sid: NoDelete
              Effect: Deny
              Action: ram:Delete*
              Resource: "*"
            - Sid: All
              Effect: Allow
              Action: ram:*
              Resource: !Sub arn:${AWS::Partition}:ram:${AWS::Region}:${AWS::AccountId}:resource-share/*
"#;
        let policies = Policies::from_template(template, &subs()).unwrap();
        let f = &policies.functions["f"];
        let tag = Request::new("ram:TagResource", "*");
        assert!(Policies::decide(f, &tag).is_none(), "the key is missing");
        let tag = tag.with("ram:RequestedResourceType", &["rds:Cluster"]);
        assert_eq!(Policies::decide(f, &tag), Some("Tagging".into()));
        let share = "arn:aws:ram:eu-west-1:123456789012:resource-share/x";
        assert_eq!(
            Policies::decide(f, &Request::new("ram:GetResourceShares", share)),
            Some("All".into())
        );
        assert!(
            Policies::decide(f, &Request::new("ram:DeleteResourceShare", share)).is_none(),
            "an explicit deny wins"
        );
        let elsewhere = "arn:aws:ram:us-east-1:123456789012:resource-share/x";
        assert!(Policies::decide(f, &Request::new("ram:GetResourceShares", elsewhere)).is_none());
    }

    #[test]
    fn the_built_in_template_gives_every_function_a_role() {
        let policies = Policies::from_template(TEMPLATE, &subs()).unwrap();
        assert!(
            policies.functions.len() >= 30,
            "{:?}",
            policies.functions.keys()
        );
        assert!(!policies.source_role.is_empty(), "the source role");
    }
}
