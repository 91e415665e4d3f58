// Package forward owns what the command line and the config file say about
// forwards, apart from the link protocol: the -L/-R/-D specifications
// (ParseForward, ParseRemote) and the target patterns of --allow-target,
// --allow-listen and --direct (TargetPolicy). It parses text; it does no
// I/O and reads no clock.
package forward
