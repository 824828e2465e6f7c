// Message content as text. React escapes strings in text nodes; this component exists so
// payloads, headers and errors have one obvious, safe way onto the screen.

import type { ReactNode } from "react";

export function TextBlock({ text, className, testId }: { text: string; className?: string; testId?: string }) {
  return <pre className={`text-block${className ? ` ${className}` : ""}`} data-testid={testId}>{text}</pre>;
}

export function KeyValues({ rows, testId }: { rows: [string, ReactNode][]; testId?: string }) {
  return (
    <table className="kv" data-testid={testId}>
      <tbody>
        {rows.map(([k, v], i) => (
          <tr key={`${k}-${i}`}><th>{k}</th><td>{v}</td></tr>
        ))}
      </tbody>
    </table>
  );
}
