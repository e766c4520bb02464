//! The state machines' own roles. Step Functions, not a function, makes
//! these calls, and in the local runtime moto's engine makes them without
//! credentials, so they are derived from each definition and checked
//! against the role the template gives that state machine:
//!
//! - a Task whose resource is a function, or `lambda:invoke` (with or
//!   without `.waitForTaskToken`) naming one: `lambda:InvokeFunction`;
//! - a Distributed Map: `states:StartExecution` on its own state machine
//!   (one child execution per batch of items), `states:DescribeExecution`
//!   and `states:StopExecution` on those children, and for an S3
//!   `ItemReader` `s3:GetObject` on the object verify-plan writes
//!   ([`clonesync::workflow::verify::items_key`]);
//! - anything else a definition could ask of AWS (another service
//!   integration, a `ResultWriter`) is refused as not modeled, so a new
//!   kind of call cannot pass unchecked.
//!
//! Sources: Step Functions developer guide, "IAM policies for using
//! Distributed Map states" and "Call Lambda with Step Functions"; SAM's
//! `LambdaInvokePolicy` template (`lambda:InvokeFunction` on
//! `function:<name>*`).

use super::{invalid, statements, text, Policies, Request, Statement, Substitutions};
use clonesync::error::{Error, Result};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, HashMap};

/// One state machine of the template: its name, role and definition.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `Name`, resolved (`clonesync-verify` locally).
    pub name: String,
    /// `DefinitionUri`, relative to the template.
    pub definition_uri: String,
    /// `DefinitionSubstitutions`, resolved.
    pub substitutions: BTreeMap<String, String>,
    /// The role's statements, SAM policy templates expanded.
    pub statements: Vec<Statement>,
}

impl Machine {
    pub(super) fn from_template(
        properties: &Yaml,
        subs: &Substitutions,
        conditions: &HashMap<String, bool>,
    ) -> Result<Machine> {
        let name = text(&properties["Name"], subs, conditions)?;
        let definition_uri = properties["DefinitionUri"]
            .as_str()
            .ok_or_else(|| invalid(format!("state machine {name}: no DefinitionUri")))?
            .to_string();
        let mut substitutions = BTreeMap::new();
        for (key, value) in properties["DefinitionSubstitutions"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            substitutions.insert(
                key.as_str().unwrap_or_default().to_string(),
                text(value, subs, conditions)?,
            );
        }
        let mut list = Vec::new();
        for policy in properties["Policies"].as_sequence().into_iter().flatten() {
            if policy.get("Statement").is_some() {
                list.extend(statements(policy, subs, conditions)?);
            } else if let Some(invoke) = policy.get("LambdaInvokePolicy") {
                let function = text(&invoke["FunctionName"], subs, conditions)?;
                list.push(Statement {
                    sid: format!("LambdaInvokePolicy({function})"),
                    allow: true,
                    actions: vec!["lambda:InvokeFunction".into()],
                    not_actions: Vec::new(),
                    resources: vec![format!(
                        "arn:aws:lambda:{}:{}:function:{function}*",
                        subs.region, subs.account
                    )],
                    conditions: Vec::new(),
                });
            } else {
                return Err(invalid(format!(
                    "state machine {name}: policy {policy:?} is not modeled"
                )));
            }
        }
        Ok(Machine {
            name,
            definition_uri,
            substitutions,
            statements: list,
        })
    }

    /// The definition with its `${...}` replaced by the template's
    /// `DefinitionSubstitutions` (one left unresolved is an error).
    pub fn resolve(&self, definition: &str) -> Result<Json> {
        let mut out = String::with_capacity(definition.len());
        let mut rest = definition;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(format!("{}: unclosed ${{", self.definition_uri)))?;
            let key = &after[..end];
            out.push_str(self.substitutions.get(key).ok_or_else(|| {
                invalid(format!(
                    "{}: ${{{key}}} is not in the state machine's DefinitionSubstitutions",
                    self.definition_uri
                ))
            })?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        serde_json::from_str(&out)
            .map_err(|e| invalid(format!("{}: not JSON: {e}", self.definition_uri)))
    }

    /// Every call Step Functions makes with this role to run `definition`
    /// (the file's text).
    pub fn requests(&self, definition: &str, subs: &Substitutions) -> Result<Vec<Request>> {
        let definition = self.resolve(definition)?;
        let mut out = Vec::new();
        self.walk(&definition["States"], subs, &mut out)?;
        Ok(out)
    }

    fn walk(&self, states: &Json, subs: &Substitutions, out: &mut Vec<Request>) -> Result<()> {
        let states = states
            .as_object()
            .ok_or_else(|| invalid(format!("{}: States is not an object", self.name)))?;
        for (state_name, state) in states {
            let not_modeled = |what: &str| {
                invalid(format!(
                    "{}: state {state_name}: {what} is not modeled",
                    self.name
                ))
            };
            match state["Type"].as_str() {
                Some("Task") => {
                    let resource = state["Resource"].as_str().unwrap_or_default();
                    let function = if resource.starts_with("arn:aws:lambda:") {
                        resource.to_string()
                    } else if matches!(
                        resource,
                        "arn:aws:states:::lambda:invoke"
                            | "arn:aws:states:::lambda:invoke.waitForTaskToken"
                    ) {
                        let name = state["Parameters"]["FunctionName"]
                            .as_str()
                            .ok_or_else(|| not_modeled("a FunctionName that is not text"))?;
                        if name.starts_with("arn:") {
                            name.to_string()
                        } else {
                            format!(
                                "arn:aws:lambda:{}:{}:function:{name}",
                                subs.region, subs.account
                            )
                        }
                    } else {
                        return Err(not_modeled(&format!("resource {resource}")));
                    };
                    out.push(Request::new("lambda:InvokeFunction", function));
                }
                Some("Map") => {
                    let processor = if state.get("ItemProcessor").is_some() {
                        &state["ItemProcessor"]
                    } else {
                        &state["Iterator"]
                    };
                    self.walk(&processor["States"], subs, out)?;
                    if processor["ProcessorConfig"]["Mode"].as_str() == Some("DISTRIBUTED") {
                        self.distributed(state, subs, out)
                            .map_err(|what| not_modeled(&what))?;
                    }
                }
                Some("Parallel") => {
                    for branch in state["Branches"].as_array().into_iter().flatten() {
                        self.walk(&branch["States"], subs, out)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What a Distributed Map asks for beyond its children's tasks.
    fn distributed(
        &self,
        state: &Json,
        subs: &Substitutions,
        out: &mut Vec<Request>,
    ) -> std::result::Result<(), String> {
        let states = |kind: &str, tail: &str| {
            format!(
                "arn:aws:states:{}:{}:{kind}:{}{tail}",
                subs.region, subs.account, self.name
            )
        };
        out.push(Request::new(
            "states:StartExecution",
            states("stateMachine", ""),
        ));
        // Children are named <machine>/<map run label>:<id>.
        let child = states("execution", "/Map:0f1e2d3c");
        out.push(Request::new("states:DescribeExecution", child.clone()));
        out.push(Request::new("states:StopExecution", child));
        if state.get("ResultWriter").is_some() {
            return Err("a ResultWriter".into());
        }
        let Some(reader) = state.get("ItemReader") else {
            return Ok(());
        };
        if reader["Resource"].as_str() != Some("arn:aws:states:::s3:getObject") {
            return Err(format!("ItemReader {}", reader["Resource"]));
        }
        // Bucket and key come from verify-plan's output: the runs bucket,
        // and the key it writes for this machine's execution.
        let parameters = &reader["Parameters"];
        let bucket = parameters["Bucket"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| subs.runs_bucket.clone());
        let key = match parameters["Key"].as_str() {
            Some(key) => key.to_string(),
            None => clonesync::workflow::verify::items_key(
                &"orders_dev".parse().map_err(|e| format!("{e}"))?,
                &states("execution", ":run-1"),
            )
            .map_err(|e| e.to_string())?,
        };
        out.push(Request::new(
            "s3:GetObject",
            format!("arn:aws:s3:::{bucket}/{key}"),
        ));
        Ok(())
    }

    /// Each call of `requests` against the role: the first denied is
    /// `Aws.AccessDenied` naming the state machine, the action and the
    /// resource.
    pub fn authorize(&self, requests: &[Request]) -> Result<()> {
        for request in requests {
            if Policies::decide(&self.statements, request).is_none() {
                return Err(Error::AwsAccessDenied {
                    service: request
                        .action
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    operation: request.action.clone(),
                    message: format!(
                        "state machine {}'s role may not {} on {}",
                        self.name, request.action, request.resource
                    ),
                    cause: None,
                });
            }
        }
        Ok(())
    }
}
