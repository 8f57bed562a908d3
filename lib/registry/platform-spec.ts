/** Platforms as users write them: 'linux/arm64/v8', 'linux/amd64', or the OCI object. */

import { CorralError } from '../sys/errors.ts';
import type { Platform } from '../image/formats/platform.ts';

/** 'os/arch[/variant]' or a Platform, checked. */
export function parsePlatform(platform: string | Platform): Platform {
  if (typeof platform !== 'string') return platform;
  const [os, architecture, variant, extra] = platform.split('/');
  if (!os || !architecture || extra !== undefined || variant === '') {
    throw new CorralError(`platform must be os/arch[/variant] (e.g. linux/arm64/v8), got ${JSON.stringify(platform)}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return { os, architecture, ...(variant === undefined ? {} : { variant }) };
}
