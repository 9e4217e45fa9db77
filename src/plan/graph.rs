//! The dependency graph of a step list: order, cycles, waves and the critical path.
//! Works on indices into the step list; `after` names are resolved once.

use std::collections::HashMap;
use std::time::Duration;

use super::StepSpec;

/// A step list's dependencies as indices.
#[derive(Debug, Clone)]
pub struct Graph {
    /// `deps[i]`: the steps step `i` runs after.
    pub deps: Vec<Vec<usize>>,
}

impl Graph {
    /// Resolves `after` names; unknown names are skipped (validation reports them).
    pub fn of(steps: &[StepSpec]) -> Graph {
        let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        Graph::resolve(&index, steps.iter().map(|s| s.after.as_slice()))
    }

    /// Resolves each step's `after` (in list order) through `index`, the step ids' positions.
    /// Unknown names are skipped (validation reports them), and so is a step naming itself, which
    /// validation reports as such rather than as a cycle.
    pub fn resolve<'a>(index: &HashMap<&str, usize>, afters: impl Iterator<Item = &'a [String]>) -> Graph {
        let deps = afters
            .enumerate()
            .map(|(i, after)| {
                let mut d: Vec<usize> =
                    after.iter().filter_map(|a| index.get(a.as_str()).copied()).filter(|&d| d != i).collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        Graph { deps }
    }

    /// A topological order, or a cycle as the list of indices around it (first repeated at the end).
    pub fn order(&self) -> Result<Vec<usize>, Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.deps.len();
        let mut mark = vec![Mark::New; n];
        let mut order = Vec::with_capacity(n);
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative depth-first search: (node, next dependency to visit).
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = self.deps[node].get(*next) {
                    *next += 1;
                    match mark[dep] {
                        Mark::New => {
                            mark[dep] = Mark::Open;
                            stack.push((dep, 0));
                        }
                        Mark::Open => {
                            let from = stack.iter().position(|&(s, _)| s == dep).expect("open nodes are on the stack");
                            let mut cycle: Vec<usize> = stack[from..].iter().map(|&(s, _)| s).collect();
                            cycle.push(dep);
                            return Err(cycle);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    /// Each step's wave: 0 for steps with no dependency, else one more than its deepest dependency.
    pub fn waves(&self, order: &[usize]) -> Vec<usize> {
        let mut wave = vec![0; self.deps.len()];
        for &i in order {
            wave[i] = self.deps[i].iter().map(|&d| wave[d] + 1).max().unwrap_or(0);
        }
        wave
    }

    /// The heaviest chain of dependencies under `weight` ending at `end` (or, without one, at
    /// whichever step finishes last), and its total.
    pub fn critical_path(
        &self,
        order: &[usize],
        end: Option<usize>,
        weight: impl Fn(usize) -> Duration,
    ) -> (Vec<usize>, Duration) {
        let n = self.deps.len();
        let mut finish = vec![Duration::ZERO; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        for &i in order {
            let best = self.deps[i].iter().copied().max_by_key(|&d| finish[d]);
            via[i] = best;
            finish[i] = best.map_or(Duration::ZERO, |d| finish[d]) + weight(i);
        }
        let Some(mut last) = end.or_else(|| (0..n).max_by_key(|&i| finish[i])) else {
            return (Vec::new(), Duration::ZERO);
        };
        let total = finish[last];
        let mut path = vec![last];
        while let Some(prev) = via[last] {
            path.push(prev);
            last = prev;
        }
        path.reverse();
        (path, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(deps: &[&[usize]]) -> Graph {
        Graph { deps: deps.iter().map(|d| d.to_vec()).collect() }
    }

    #[test]
    fn orders_dependencies_first() {
        let g = graph(&[&[1], &[], &[0, 1]]);
        let order = g.order().unwrap();
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(1) < pos(0) && pos(0) < pos(2));
        assert_eq!(g.waves(&order), vec![1, 0, 2]);
    }

    #[test]
    fn finds_the_cycle() {
        let g = graph(&[&[2], &[0], &[1], &[]]);
        let cycle = g.order().unwrap_err();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
    }

    #[test]
    fn critical_path_follows_the_heaviest_chain() {
        // 0 (1s) -> 2 (1s); 1 (5s) -> 2
        let g = graph(&[&[], &[], &[0, 1]]);
        let order = g.order().unwrap();
        let (path, total) = g.critical_path(&order, None, |i| Duration::from_secs([1, 5, 1][i]));
        assert_eq!(path, vec![1, 2]);
        assert_eq!(total, Duration::from_secs(6));
        let (path, total) = g.critical_path(&order, Some(0), |i| Duration::from_secs([1, 5, 1][i]));
        assert_eq!((path, total), (vec![0], Duration::from_secs(1)));
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let deps: Vec<Vec<usize>> = (0..100_000).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        let g = Graph { deps };
        assert_eq!(g.order().unwrap().len(), 100_000);
    }
}
