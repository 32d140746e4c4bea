// The comparison server of scripts/bench.sh: Go's net/http file server (it
// answers ranges and preconditions itself and uses sendfile for whole files).
//
//	go run scripts/go-fileserver/main.go -root DIR -addr 127.0.0.1:PORT
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, http.FileServer(http.Dir(*root))))
}
