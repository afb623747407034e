// Command elcachectl is the command-line client of an elcache cluster: it
// reads, writes and scans keys and shows a node's stats through the client
// package, and lists the cluster's members and partitions and drains nodes
// through the Admin and topology calls. Run "elcachectl -h" for usage.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
