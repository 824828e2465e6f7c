import { useState } from "react";

/** An id shown as text with a small copy button. */
export function Copyable({ text, short }: { text: string; short?: string }) {
  const [done, setDone] = useState(false);
  return (
    <span className="copyable" title={text}>
      <code>{short ?? text}</code>
      <button type="button" className="copy-btn" aria-label={`copy ${text}`} onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => { setDone(true); setTimeout(() => setDone(false), 1200); });
      }}>{done ? "copied" : "copy"}</button>
    </span>
  );
}
