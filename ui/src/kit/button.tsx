import type { ComponentProps } from "react";

export function Button({ variant = "default", className, ...rest }: ComponentProps<"button"> & { variant?: "default" | "primary" | "danger" | "ghost" }) {
  return <button type="button" className={`btn btn-${variant}${className ? ` ${className}` : ""}`} {...rest} />;
}
