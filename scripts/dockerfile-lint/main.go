// dockerfile-lint: BuildKit's own Dockerfile checks (the rules of `docker build --check`,
// https://docs.docker.com/go/dockerfile/rule/) on the given Dockerfiles, without a Docker daemon
// and without registry access. Prints one line per finding; exit 1 if any, 2 on a usage error.
//
// Base images are resolved offline to an empty linux/amd64 configuration, so the few rules that
// depend on a base image's own contents (its ENV for UndefinedVar, its platform for
// InvalidBaseImagePlatform) see an empty image.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint DOCKERFILE...")
		os.Exit(2)
	}
	findings := 0
	for _, path := range os.Args[1:] {
		dt, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dockerfile-lint: %v\n", err)
			os.Exit(2)
		}
		opt := dockerfile2llb.ConvertOpt{
			Config:       dockerui.Config{},
			SourceMap:    sourceMap(path, dt),
			MetaResolver: offline{},
		}
		res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, opt)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dockerfile-lint: %s: %v\n", path, err)
			os.Exit(2)
		}
		if res.Error != nil {
			fmt.Printf("%s: error: %s\n", path, res.Error.Message)
			findings++
		}
		for _, w := range res.Warnings {
			line := int32(0)
			if w.Location != nil && len(w.Location.Ranges) > 0 {
				line = w.Location.Ranges[0].Start.Line
			}
			fmt.Printf("%s:%d: %s: %s (%s)\n", path, line, w.RuleName, w.Detail, w.URL)
			findings++
		}
	}
	if findings > 0 {
		os.Exit(1)
	}
}

// sourceMap names the file in the results (DockerfileLint requires one with a definition).
func sourceMap(path string, dt []byte) *llb.SourceMap {
	st := llb.Scratch()
	def, err := st.Marshal(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerfile-lint: %v\n", err)
		os.Exit(2)
	}
	sm := llb.NewSourceMap(&st, path, "Dockerfile", dt)
	sm.Definition = def
	return sm
}

// offline resolves every base image to an empty linux/amd64 configuration.
type offline struct{}

func (offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"architecture":"amd64","os":"linux","config":{}}`)
	return ref, digest.FromBytes(config), config, nil
}
