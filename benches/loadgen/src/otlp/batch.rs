//! The OpenTelemetry Collector's `batch` processor, reduced to what decides request shapes:
//! exports are queued as they arrive (each one resource's data points or log records), a batch
//! is sent once at least `send_batch_size` items are queued, and a batch never carries more than
//! `send_batch_max_size` items — a larger queue is cut, splitting a resource's export across two
//! requests. The processor's timeout is modelled by [`Batcher::flush`] at the end of an export
//! round.

/// Items `lo..hi` of one resource's current export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub(crate) resource: usize,
    pub(crate) lo: usize,
    pub(crate) hi: usize,
}

impl Slice {
    pub(crate) fn len(&self) -> usize {
        self.hi - self.lo
    }
}

#[derive(Debug)]
pub(crate) struct Batcher {
    size: usize,
    /// 0: unbounded.
    max: usize,
    pending: Vec<Slice>,
    pending_items: usize,
}

impl Batcher {
    pub(crate) fn new(size: usize, max: usize) -> Self {
        Self {
            size: size.max(1),
            max,
            pending: Vec::new(),
            pending_items: 0,
        }
    }

    /// Queues an export of `items` items of `resource`; appends every batch that completes.
    pub(crate) fn push(&mut self, resource: usize, items: usize, out: &mut Vec<Vec<Slice>>) {
        if items == 0 {
            return;
        }
        self.pending.push(Slice {
            resource,
            lo: 0,
            hi: items,
        });
        self.pending_items += items;
        while self.pending_items >= self.size {
            let take = if self.max > 0 {
                self.pending_items.min(self.max)
            } else {
                self.pending_items
            };
            out.push(self.cut(take));
        }
    }

    /// Sends whatever is queued (the processor's timeout firing).
    pub(crate) fn flush(&mut self, out: &mut Vec<Vec<Slice>>) {
        if self.pending_items > 0 {
            let n = self.pending_items;
            out.push(self.cut(n));
        }
    }

    /// Takes the first `n` queued items, splitting the slice that straddles the cut.
    fn cut(&mut self, n: usize) -> Vec<Slice> {
        let mut batch = Vec::new();
        let mut left = n;
        let mut whole = 0;
        for s in &mut self.pending {
            if left == 0 {
                break;
            }
            if s.len() <= left {
                left -= s.len();
                batch.push(*s);
                whole += 1;
            } else {
                batch.push(Slice {
                    resource: s.resource,
                    lo: s.lo,
                    hi: s.lo + left,
                });
                s.lo += left;
                left = 0;
            }
        }
        self.pending.drain(..whole);
        self.pending_items -= n;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_between_size_and_max_items_and_split_large_exports() {
        let mut b = Batcher::new(1000, 2000);
        let mut out = vec![];
        b.push(0, 600, &mut out);
        assert!(out.is_empty());
        b.push(1, 500, &mut out);
        assert_eq!(
            out,
            vec![vec![
                Slice {
                    resource: 0,
                    lo: 0,
                    hi: 600
                },
                Slice {
                    resource: 1,
                    lo: 0,
                    hi: 500
                }
            ]]
        );
        out.clear();
        // 4500 items at once: two full batches, 500 left queued.
        b.push(2, 4500, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            vec![Slice {
                resource: 2,
                lo: 0,
                hi: 2000
            }]
        );
        assert_eq!(
            out[1],
            vec![Slice {
                resource: 2,
                lo: 2000,
                hi: 4000
            }]
        );
        out.clear();
        b.push(3, 0, &mut out);
        b.flush(&mut out);
        assert_eq!(
            out,
            vec![vec![Slice {
                resource: 2,
                lo: 4000,
                hi: 4500
            }]]
        );
        out.clear();
        b.flush(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn every_item_is_sent_exactly_once_in_order() {
        let mut b = Batcher::new(700, 900);
        let mut out = vec![];
        let sizes = [13usize, 950, 1, 300, 2000, 77, 699, 700, 5];
        for (r, &n) in sizes.iter().enumerate() {
            b.push(r, n, &mut out);
        }
        b.flush(&mut out);
        let mut next = vec![0usize; sizes.len()];
        let mut last_resource = 0;
        for batch in &out {
            let n: usize = batch.iter().map(Slice::len).sum();
            assert!(n <= 900, "{n}");
            for s in batch {
                assert_eq!(s.lo, next[s.resource], "contiguous");
                assert!(s.resource >= last_resource, "arrival order");
                last_resource = s.resource;
                next[s.resource] = s.hi;
            }
        }
        assert_eq!(next, sizes);
        // Every batch but the last reached the size.
        for batch in &out[..out.len() - 1] {
            assert!(batch.iter().map(Slice::len).sum::<usize>() >= 700);
        }
    }
}
