/**
 * The rendered text a component hands to AWS (user data, nginx.conf via SSM, the servers' config
 * files), exposed as data so `npm run render` writes exactly what would be deployed without
 * parsing it back out of resource inputs. Components fill it from the same strings they pass to
 * their resources.
 */
import * as pulumi from '@pulumi/pulumi';

export interface RenderedArtifact {
  /** Manifest kind: `user-data`, `nginx-conf`, `deepstream-config`, `centrifugo-config`, ... */
  readonly kind: string;
  /** Name of the resource the text belongs to (an instance, an SSM association). */
  readonly resource: string;
  /** File name, unique within `resource`. */
  readonly fileName: string;
  readonly content: string;
}

/** Flattens artifact lists of several sources into one output. */
export function collectArtifacts(
  ...sources: pulumi.Input<pulumi.Input<RenderedArtifact>[]>[]
): pulumi.Output<RenderedArtifact[]> {
  return pulumi.all(sources.map((source) => pulumi.output(source))).apply((lists) => lists.flat() as RenderedArtifact[]);
}
