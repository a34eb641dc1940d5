import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type Boss, COMPLETE_TASK } from './db/queues.ts';

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The process's Prometheus metrics, on a registry of its own (prom-client's global one is a module
 * singleton). Every series carries the process `role`; Prometheus adds up the processes it scrapes.
 */
export function createMetrics(role: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by method, route (the pattern, not the path) and status, with their duration',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    tasksCreated: new Counter({
      name: 'task_manager_tasks_created_total',
      help: 'Tasks created (with their job) by this process',
      registers,
    }),
    tasksCompleted: new Counter({
      name: 'task_manager_tasks_completed_total',
      help: 'Tasks completed by this worker when their job came due (committed)',
      registers,
    }),
    completionLateness: new Histogram({
      name: 'task_manager_completion_lateness_seconds',
      help: 'completed_at - due_at of the tasks this worker completed',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300],
      registers,
    }),
    workerBatchDuration: new Histogram({
      name: 'task_manager_worker_batch_duration_seconds',
      help: 'Time to complete one batch of due jobs, its transaction included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    workerBatchFailures: new Counter({
      name: 'task_manager_worker_batch_failures_total',
      help: 'Batches whose transaction failed (pg-boss retries their jobs)',
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'task_manager_webhook_deliveries_total',
      help: 'Webhook deliveries that ended: succeeded (2xx), failed (after every retry), gone (410: endpoint disabled), dropped (endpoint disabled before)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    webhookAttempts: new Counter({
      name: 'task_manager_webhook_attempts_total',
      help: 'Webhook delivery attempts by result: 2xx, 4xx, 5xx, 3xx (redirects are not followed), or error (timeout, refused address, network)',
      labelNames: ['result'] as const,
      registers,
    }),
    webhookDeliveryLatency: new Histogram({
      name: 'task_manager_webhook_delivery_seconds',
      help: "From the event's commit to the endpoint's 2xx, retries included",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600, 86_400],
      registers,
    }),
  };
}

const QUEUE_CACHE_MS = 5_000;

/**
 * Queue depth by state, from pg-boss's own per-queue counts (one row, kept up to date by the workers'
 * supervisor), read at most every 5 s whatever the scrape rate: never a scan of the job table.
 */
export function trackQueueDepth(metrics: Metrics, boss: Boss): void {
  let cached: { at: number; counts: Record<string, number> } | null = null;
  new Gauge({
    name: 'task_manager_queue_jobs',
    help: 'Jobs of the task-completion queue by state: deferred (not due yet), ready, active, failed (retained), total',
    labelNames: ['state'] as const,
    registers: [metrics.registry],
    async collect() {
      if (!cached || Date.now() - cached.at > QUEUE_CACHE_MS) {
        const queue = await boss.getQueue(COMPLETE_TASK).catch(() => null);
        if (!queue) return;
        cached = {
          at: Date.now(),
          counts: {
            // Not due yet, parked ones included (pg-boss counts those apart, as blocked).
            deferred: queue.queuedCount - queue.readyCount,
            ready: queue.readyCount,
            active: queue.activeCount,
            failed: queue.failedCount,
            total: queue.totalCount,
          },
        };
      }
      for (const [state, count] of Object.entries(cached.counts)) this.set({ state }, count);
    },
  });
}
