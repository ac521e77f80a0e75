/** The parts of `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS` that logs correlate on. */
export interface TraceContext {
  traceId: string;
  spanId?: string;
  sampled?: boolean;
}

const TRACE_HEADER = /^([0-9a-f]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?$/i;

/**
 * Parses Cloud Run's trace header; anything malformed is ignored rather than logged.
 * https://cloud.google.com/trace/docs/trace-context
 */
export function parseTraceContext(header: string | undefined): TraceContext | undefined {
  const match = header === undefined ? null : TRACE_HEADER.exec(header.trim());
  if (!match) return undefined;
  const context: TraceContext = { traceId: match[1]!.toLowerCase() };
  if (match[2] !== undefined) context.spanId = match[2];
  if (match[3] !== undefined) context.sampled = match[3] === '1';
  return context;
}

/** The log fields that attach a line to its trace in Cloud Logging. */
export function traceLogFields(
  context: TraceContext | undefined,
  projectId: string | undefined,
): Record<string, unknown> {
  if (!context) return {};
  const fields: Record<string, unknown> = {
    'logging.googleapis.com/trace': projectId
      ? `projects/${projectId}/traces/${context.traceId}`
      : context.traceId,
  };
  if (context.spanId !== undefined) fields['logging.googleapis.com/spanId'] = context.spanId;
  if (context.sampled !== undefined) fields['logging.googleapis.com/trace_sampled'] = context.sampled;
  return fields;
}
