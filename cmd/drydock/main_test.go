package main

import (
	"os"
	"testing"

	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestMain stops the PostgreSQL cluster the tests may have started.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
