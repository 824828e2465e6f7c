import { useEffect } from "react";
import { Shell } from "./components/layout/shell";
import { Loading } from "./kit/states";
import { DeadLettersPage } from "./pages/dead-letters-page";
import { FlowPage } from "./pages/flow-page";
import { FlowsPage } from "./pages/flows-page";
import { LoginPage } from "./pages/login-page";
import { MessagePage } from "./pages/message-page";
import { OverviewPage } from "./pages/overview-page";
import { QueuePage } from "./pages/queue-page";
import { QueuesPage } from "./pages/queues-page";
import { startLive, stopLive } from "./state/live";
import { useRoute } from "./state/router";
import { session } from "./state/session";
import { useStore } from "./state/store";
import { hrefs, type Route } from "./util/route";
import type { Role } from "./api/types";
import { Empty } from "./kit/states";

export function App() {
  const s = useStore(session);
  const route = useRoute();
  const client = s.status === "ready" ? s.client : null;
  useEffect(() => {
    if (!client) return;
    startLive(client);
    return stopLive;
  }, [client]);

  if (s.status === "starting") return <Loading what="console" />;
  if (s.status !== "ready") return <LoginPage reason={s.status === "logged-out" ? s.reason : undefined} checking={s.status === "checking"} />;
  return (
    <Shell route={route} role={s.role}>
      <Page route={route} role={s.role} />
    </Shell>
  );
}

function Page({ route, role }: { route: Route; role: Role }) {
  switch (route.page) {
    case "overview": return <OverviewPage />;
    case "queues": return <QueuesPage role={role} />;
    case "queue": return <QueuePage key={route.name} name={route.name} role={role} />;
    case "dead-letters": return <DeadLettersPage key={route.queue ?? ""} queue={route.queue} id={route.id} reason={route.reason} role={role} />;
    case "flows": return <FlowsPage />;
    case "flow": return <FlowPage key={route.id} id={route.id} span={route.span} />;
    case "message": return <MessagePage key={route.id} id={route.id} />;
    case "not-found": return <Empty title="No such page">Nothing lives at #/{route.path}. <a href={hrefs.overview()}>Go to the overview</a>.</Empty>;
  }
}
