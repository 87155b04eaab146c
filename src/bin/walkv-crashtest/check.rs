//! The checker: after a restart, is what a client's keys hold a state the
//! history allows?
//!
//! A client's keys start a cycle in a known state (what the previous check
//! read). Each operation since then moves the set of *possible* states:
//! an acknowledged one is applied to every possible state (and an INCR's
//! reply must match), an unknown one may or may not have been applied
//! (both branches are kept), a failed one changes nothing. The state read
//! after the restart must be one of them. When it is not, each key is
//! judged alone to say why: a value older than an acknowledged write (or a
//! counter that went back) is **lost**, a value nobody wrote (or a counter
//! ahead of every INCR) is a **phantom**, and keys that are each possible but
//! not together break the all-or-nothing of an MSET or MULTI/EXEC.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::workload::{Effect, Op, Outcome, is_counter};

/// Key → value for the keys of one client; an absent key is not in the map.
pub type State = BTreeMap<String, String>;

/// More possible states than this means too many unknown outcomes to
/// follow (a fenced daemon answering errors to everything); the surplus is
/// dropped and the check may then report a false violation.
const MAX_STATES: usize = 1 << 14;

#[derive(Debug, Default, Clone)]
pub struct Verdict {
    /// Acknowledged writes whose effect is missing.
    pub lost: u64,
    /// Keys holding a value (or a count) nobody wrote.
    pub phantom: u64,
    /// Multi-key operations seen in part.
    pub partial: u64,
    /// Acknowledged INCRs whose reply no possible state explains.
    pub inconsistent: u64,
    pub details: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.lost + self.phantom + self.partial + self.inconsistent == 0
    }

    pub fn add(&mut self, other: Verdict) {
        self.lost += other.lost;
        self.phantom += other.phantom;
        self.partial += other.partial;
        self.inconsistent += other.inconsistent;
        self.details.extend(other.details);
    }
}

/// Applies `op` to `state`; `None` when an acknowledged INCR's reply
/// contradicts the state (so that state was not the real one).
fn apply(state: &State, op: &Op, check_replies: bool) -> Option<State> {
    let mut s = state.clone();
    let mut incrs = op.incr_results.iter();
    for w in &op.writes {
        match &w.effect {
            Effect::Set(v) => {
                s.insert(w.key.clone(), v.clone());
            }
            Effect::Del => {
                s.remove(&w.key);
            }
            Effect::Incr => {
                let n = s.get(&w.key).map_or(0, |v| v.parse::<i64>().unwrap_or(0)) + 1;
                if check_replies && incrs.next() != Some(&n) {
                    return None;
                }
                s.insert(w.key.clone(), n.to_string());
            }
        }
    }
    Some(s)
}

/// The states `base` can have become through `ops`.
pub fn possible_states(base: &State, ops: &[Op], verdict: &mut Verdict) -> BTreeSet<State> {
    let mut states = BTreeSet::from([base.clone()]);
    for op in ops {
        match op.outcome {
            Outcome::Failed => {}
            Outcome::Acked => {
                let next: BTreeSet<State> = states.iter().filter_map(|s| apply(s, op, true)).collect();
                if next.is_empty() {
                    verdict.inconsistent += 1;
                    verdict.details.push(format!(
                        "client {} op {} ({}): acknowledged INCR replies {:?} follow from no possible earlier state",
                        op.client, op.id, op.kind, op.incr_results
                    ));
                    states = states.iter().filter_map(|s| apply(s, op, false)).collect();
                } else {
                    states = next;
                }
            }
            Outcome::Unknown => {
                let applied: Vec<State> = states.iter().filter_map(|s| apply(s, op, false)).collect();
                states.extend(applied);
                while states.len() > MAX_STATES {
                    states.pop_last();
                }
            }
        }
    }
    states
}

/// Checks what one client's keys hold after a restart. `ops` are the
/// operations since `base` was read; `written` maps each key to every value
/// ever written to it (for telling a lost value from a phantom).
pub fn check_client(
    base: &State,
    ops: &[Op],
    observed: &State,
    written: &HashMap<String, HashSet<String>>,
    keys: &[String],
) -> Verdict {
    let mut verdict = Verdict::default();
    let states = possible_states(base, ops, &mut verdict);
    if states.contains(observed) {
        return verdict;
    }
    let mut every_key_possible = true;
    for key in keys {
        let got = observed.get(key);
        if states.iter().any(|s| s.get(key) == got) {
            continue;
        }
        every_key_possible = false;
        judge_key(key, got, &states, ops, written, &mut verdict);
    }
    if every_key_possible {
        verdict.partial += 1;
        verdict.details.push(format!(
            "keys {keys:?}: each value is possible but not together: an MSET or MULTI/EXEC was applied in part; observed {observed:?}"
        ));
    }
    verdict
}

fn judge_key(
    key: &str,
    got: Option<&String>,
    states: &BTreeSet<State>,
    ops: &[Op],
    written: &HashMap<String, HashSet<String>>,
    verdict: &mut Verdict,
) {
    let touching = || ops.iter().filter(|op| op.writes.iter().any(|w| w.key == key));
    if is_counter(key) {
        let n = got.map_or(0, |v| v.parse::<i64>().unwrap_or(i64::MIN));
        let counts: Vec<i64> = states
            .iter()
            .map(|s| s.get(key).map_or(0, |v| v.parse().unwrap_or(0)))
            .collect();
        let (min, max) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        if n > max {
            verdict.phantom += 1;
            verdict.details.push(format!(
                "{key}: counter is {n}, ahead of every possible value ({min}..={max})"
            ));
        } else {
            let lost = touching()
                .filter(|op| op.outcome == Outcome::Acked && op.incr_results.iter().any(|&r| r > n))
                .count() as u64;
            verdict.lost += lost.max(1);
            verdict.details.push(format!(
                "{key}: counter went back to {n}; possible {min}..={max}; {lost} acknowledged INCRs lost"
            ));
        }
        return;
    }
    let never_written = got.is_some_and(|v| !written.get(key).is_some_and(|all| all.contains(v)));
    if never_written {
        verdict.phantom += 1;
        verdict
            .details
            .push(format!("{key}: holds {got:?}, which was never written to it"));
        return;
    }
    // Lost: count the acknowledged writes to this key after the last
    // operation that could have left what was read.
    let ops_vec: Vec<&Op> = touching().collect();
    let from = ops_vec
        .iter()
        .rposition(|op| {
            op.writes.iter().any(|w| {
                w.key == key
                    && match (&w.effect, got) {
                        (Effect::Set(v), Some(g)) => v == g,
                        (Effect::Del, None) => true,
                        _ => false,
                    }
            })
        })
        .map_or(0, |i| i + 1);
    let lost = ops_vec[from..]
        .iter()
        .filter(|op| op.outcome == Outcome::Acked)
        .count() as u64;
    let last_acked = ops_vec
        .iter()
        .rev()
        .find(|op| op.outcome == Outcome::Acked)
        .map(|op| op.id);
    verdict.lost += lost.max(1);
    verdict.details.push(format!(
        "{key}: holds {got:?}, older than acknowledged writes ({lost} lost; last acknowledged op {last_acked:?})"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Write;

    fn op(id: u64, outcome: Outcome, writes: Vec<(&str, Effect)>, incr: Vec<i64>) -> Op {
        Op {
            client: 0,
            id,
            cycle: 0,
            kind: "test",
            writes: writes
                .into_iter()
                .map(|(k, effect)| Write {
                    key: k.into(),
                    effect,
                })
                .collect(),
            outcome,
            incr_results: incr,
        }
    }

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn written(ops: &[Op]) -> HashMap<String, HashSet<String>> {
        let mut w: HashMap<String, HashSet<String>> = HashMap::new();
        for op in ops {
            for x in &op.writes {
                if let Effect::Set(v) = &x.effect {
                    w.entry(x.key.clone()).or_default().insert(v.clone());
                }
            }
        }
        w
    }

    #[test]
    fn judges_lost_phantom_partial_and_counters() {
        let keys: Vec<String> = ["c0:k0", "c0:k1", "c0:n0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ops = vec![
            op(
                1,
                Outcome::Acked,
                vec![("c0:k0", Effect::Set("a".into()))],
                vec![],
            ),
            op(2, Outcome::Acked, vec![("c0:n0", Effect::Incr)], vec![1]),
            op(
                3,
                Outcome::Unknown,
                vec![
                    ("c0:k0", Effect::Set("b".into())),
                    ("c0:k1", Effect::Set("c".into())),
                ],
                vec![],
            ),
        ];
        let w = written(&ops);
        let base = State::new();
        let ok = |obs: &State| check_client(&base, &ops, obs, &w, &keys);
        assert!(ok(&state(&[("c0:k0", "a"), ("c0:n0", "1")])).is_clean());
        assert!(ok(&state(&[("c0:k0", "b"), ("c0:k1", "c"), ("c0:n0", "1")])).is_clean());
        let v = ok(&state(&[("c0:n0", "1")]));
        assert_eq!((v.lost, v.phantom), (1, 0), "{v:?}");
        let v = ok(&state(&[("c0:k0", "a")]));
        assert_eq!(v.lost, 1, "counter went back: {v:?}");
        let v = ok(&state(&[("c0:k0", "zzz"), ("c0:n0", "1")]));
        assert_eq!(v.phantom, 1, "{v:?}");
        let v = ok(&state(&[("c0:k0", "b"), ("c0:n0", "1")]));
        assert_eq!(v.partial, 1, "half of op 3: {v:?}");
        let v = ok(&state(&[("c0:k0", "a"), ("c0:n0", "2")]));
        assert_eq!(v.phantom, 1, "{v:?}");
    }
}
