//! The least-recently-seen order of the tracked (service, template) pairs: a
//! slab-backed list apart from the store's maps, because eviction needs O(1)
//! updates and an order that does not depend on hashing.

const NIL: u32 = u32::MAX;

/// One tracked (service, template) in recency order.
#[derive(Debug)]
struct Node {
    prev: u32,
    next: u32,
    /// The trace (see [`Recency::batch`]) that last saw it.
    batch: u64,
    /// Whether the nodes of its batch are in (service, template) order.
    ordered: bool,
    service: String,
    template: String,
}

/// The tracked (service, template) pairs from the least to the most recently
/// seen: a doubly linked list in a slab, so that marking one as seen,
/// adding, evicting the oldest and removing one are all O(1).
///
/// The pairs one trace sees count as seen in (service, template) order. A
/// trace may mark them in another order (then its batch of nodes is not
/// `ordered`): the batch is sorted when eviction first reaches it. The
/// nodes of a batch stay contiguous, since marking a node moves it to the
/// back.
#[derive(Debug)]
pub(super) struct Recency {
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    live: usize,
    /// The current batch (one per trace) and whether it is marked in order.
    batch: u64,
    ordered: bool,
    /// Scratch for sorting a batch.
    scratch: Vec<u32>,
}

impl Default for Recency {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            live: 0,
            batch: 0,
            ordered: true,
            scratch: Vec::new(),
        }
    }
}

impl Recency {
    /// How many pairs it orders.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Starts the batch of a new trace, whose pairs are marked in
    /// (service, template) order when `ordered`.
    pub(super) fn next_batch(&mut self, ordered: bool) {
        self.batch = self.batch.wrapping_add(1);
        self.ordered = ordered;
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = {
            let n = &self.nodes[id as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn link_back(&mut self, id: u32) {
        let tail = self.tail;
        {
            let n = &mut self.nodes[id as usize];
            n.prev = tail;
            n.next = NIL;
        }
        match tail {
            NIL => self.head = id,
            t => self.nodes[t as usize].next = id,
        }
        self.tail = id;
    }

    /// Adds a pair as the most recently seen; returns its node.
    pub(super) fn push(&mut self, service: &str, template: &str) -> u32 {
        let node = Node {
            prev: NIL,
            next: NIL,
            batch: self.batch,
            ordered: self.ordered,
            service: service.to_owned(),
            template: template.to_owned(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(NIL)
            }
        };
        self.link_back(id);
        self.live += 1;
        id
    }

    /// Marks node `id` as the most recently seen.
    pub(super) fn touch(&mut self, id: u32) {
        if self.tail != id {
            self.unlink(id);
            self.link_back(id);
        }
        let n = &mut self.nodes[id as usize];
        n.batch = self.batch;
        n.ordered = self.ordered;
    }

    /// The least recently seen node.
    pub(super) fn oldest(&mut self) -> Option<u32> {
        let head = self.head;
        let first = self.nodes.get(head as usize)?;
        if !first.ordered {
            self.order_batch_at_head();
        }
        Some(self.head)
    }

    /// Sorts the batch at the head by (service, template).
    fn order_batch_at_head(&mut self) {
        let batch = self.nodes[self.head as usize].batch;
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        let mut at = self.head;
        while at != NIL && self.nodes[at as usize].batch == batch {
            ids.push(at);
            at = self.nodes[at as usize].next;
        }
        let nodes = &self.nodes;
        ids.sort_by(|&a, &b| {
            let (a, b) = (&nodes[a as usize], &nodes[b as usize]);
            (a.service.as_str(), a.template.as_str())
                .cmp(&(b.service.as_str(), b.template.as_str()))
        });
        // Relink the batch in order in front of what follows it.
        let mut prev = NIL;
        for &id in &ids {
            let n = &mut self.nodes[id as usize];
            n.prev = prev;
            n.ordered = true;
            match prev {
                NIL => self.head = id,
                p => self.nodes[p as usize].next = id,
            }
            prev = id;
        }
        if prev != NIL {
            self.nodes[prev as usize].next = at;
            match at {
                NIL => self.tail = prev,
                a => self.nodes[a as usize].prev = prev,
            }
        }
        self.scratch = ids;
    }

    /// Removes node `id`; returns its pair.
    pub(super) fn remove(&mut self, id: u32) -> (String, String) {
        self.unlink(id);
        self.free.push(id);
        self.live -= 1;
        let n = &mut self.nodes[id as usize];
        (
            std::mem::take(&mut n.service),
            std::mem::take(&mut n.template),
        )
    }
}
