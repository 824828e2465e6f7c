// The console's hand-written API types (types.ts) held to the server's OpenAPI document:
// schema.d.ts is generated from openapi.json (`npm run gen:api`; the server's e2e test keeps
// openapi.json current). Every field the console reads must exist in the server's schema, or
// the type check (`npm run build`, `npm run typecheck`) fails here, naming the type.
import type { components } from "./schema";
import type * as T from "./types";

type S = components["schemas"];
/** The console's fields that the server's schema does not have: must be `never`. */
type Unknown<Console, Server> = Exclude<keyof Console, keyof Server>;
type Expect<T extends never> = T;

export type Contract = [
  Expect<Unknown<T.QueueSpec, S["QueueSpec"]>>,
  Expect<Unknown<T.QueueStats, S["QueueStats"]>>,
  Expect<Unknown<T.QueueSummary, S["QueueSummary"]>>,
  Expect<Unknown<T.Message, S["Message"]>>,
  Expect<Unknown<T.Delivery, S["Delivery"]>>,
  Expect<Unknown<T.HistoryEntry, S["HistoryEvent"]>>,
  Expect<Unknown<T.DeadLetter, S["DeadLetter"]>>,
  Expect<Unknown<T.SendBody, S["SendBody"]>>,
  Expect<Unknown<T.Span, S["Span"]>>,
  Expect<Unknown<T.SpanLink, S["SpanLink"]>>,
  Expect<Unknown<T.FlowNode, S["FlowNode"]>>,
  Expect<Unknown<T.FlowEdge, S["FlowEdge"]>>,
  Expect<Unknown<T.Flow, S["Flow"]>>,
  Expect<Unknown<T.FlowSummary, S["FlowSummary"]>>,
  Expect<Unknown<T.FeedEvent, S["FeedEvent"]>>,
  Expect<Unknown<T.Rates, S["Rates"]>>,
  Expect<Unknown<T.Overview, S["Overview"]>>,
  Expect<Unknown<T.ErrorBody, S["ErrorResponse"]>>,
];
