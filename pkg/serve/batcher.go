package serve

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Batcher.Submit once the batcher is closing.
var ErrClosed = errors.New("the server is shutting down")

// ErrOverloaded is returned by Batcher.Submit when its queue is full.
var ErrOverloaded = errors.New("the server is overloaded: too many requests are waiting")

// BatchStats describe one batch a Batcher ran, for metrics.
type BatchStats struct {
	// Items is the number of items run; Adapters the number of distinct adapters among
	// them (the base alone counts as one); Dropped the items left out because their client
	// had gone.
	Items, Adapters, Dropped int
	// Wait is how long the batch's first item waited for the batch to fill; Run how long
	// the engine took.
	Wait, Run time.Duration
}

// Batcher gathers concurrent requests into batches for an Engine: a batch starts when
// MaxBatch items wait or MaxDelay has passed since its first item arrived, whichever comes
// first, and mixes whatever adapters its items name. One goroutine runs the batches one
// after another.
type Batcher struct {
	e        *Engine
	maxBatch int
	maxDelay time.Duration
	// OnBatch, when set before the first Submit, is called after each batch.
	OnBatch func(BatchStats)

	mu     sync.RWMutex
	closed bool
	queue  chan *pending
	done   chan struct{}
}

type pending struct {
	ctx    context.Context
	item   Item
	result chan Result // buffered: the worker never blocks on a client that left
}

// QueueLimit is the most items a Batcher holds waiting; Submit fails with ErrOverloaded
// beyond it.
const QueueLimit = 4096

// NewBatcher starts a batcher for e. maxBatch <= 0 takes the engine's MaxBatch (and is
// capped by it); maxDelay <= 0 runs each batch as soon as its first item arrives (still
// taking whatever else is already waiting).
func NewBatcher(e *Engine, maxBatch int, maxDelay time.Duration) *Batcher {
	if maxBatch <= 0 || maxBatch > e.opts.MaxBatch {
		maxBatch = e.opts.MaxBatch
	}
	b := &Batcher{e: e, maxBatch: maxBatch, maxDelay: max(0, maxDelay),
		queue: make(chan *pending, QueueLimit), done: make(chan struct{})}
	go b.loop()
	return b
}

// Submit queues one item and waits for its result. When ctx ends first (the client went
// away) it returns ctx's error at once, and the item is dropped unless its batch already
// runs.
func (b *Batcher) Submit(ctx context.Context, it Item) (Result, error) {
	p := &pending{ctx: ctx, item: it, result: make(chan Result, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return Result{}, ErrClosed
	}
	select {
	case b.queue <- p:
	default:
		b.mu.RUnlock()
		return Result{}, ErrOverloaded
	}
	b.mu.RUnlock()
	select {
	case r := <-p.result:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops taking items, runs those already queued, and returns when the last batch is
// done.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *Batcher) loop() {
	defer close(b.done)
	var timer *time.Timer
	for first := range b.queue {
		batch := []*pending{first}
		start := time.Now()
		// Take what is already waiting, then wait up to maxDelay for more.
		open := true
	fill:
		for len(batch) < b.maxBatch {
			select {
			case p, ok := <-b.queue:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, p)
				continue
			default:
			}
			if b.maxDelay <= 0 {
				break
			}
			left := b.maxDelay - time.Since(start)
			if left <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			select {
			case p, ok := <-b.queue:
				timer.Stop()
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, p)
			case <-timer.C:
				break fill
			}
		}
		b.run(batch, time.Since(start))
		if !open {
			break
		}
	}
	// Closed: run whatever is still queued.
	var rest []*pending
	for p := range b.queue {
		rest = append(rest, p)
		if len(rest) == b.maxBatch {
			b.run(rest, 0)
			rest = nil
		}
	}
	if len(rest) > 0 {
		b.run(rest, 0)
	}
}

func (b *Batcher) run(batch []*pending, wait time.Duration) {
	live := batch[:0:0]
	items := make([]Item, 0, len(batch))
	adapters := map[string]bool{}
	for _, p := range batch {
		if p.ctx.Err() != nil {
			continue // its client has gone: nobody reads the answer
		}
		live = append(live, p)
		items = append(items, p.item)
		adapters[p.item.Adapter] = true
	}
	st := BatchStats{Items: len(live), Adapters: len(adapters), Dropped: len(batch) - len(live), Wait: wait}
	if len(live) > 0 {
		t := time.Now()
		res, err := b.e.Generate(items)
		st.Run = time.Since(t)
		for i, p := range live {
			if err != nil {
				p.result <- Result{Adapter: p.item.Adapter, Err: err}
				continue
			}
			p.result <- res[i]
		}
	}
	if b.OnBatch != nil {
		b.OnBatch(st)
	}
}
