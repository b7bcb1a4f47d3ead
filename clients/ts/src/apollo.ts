// pawql from Apollo Client, as a web or React Native app uses it: uploads through
// apollo-upload-client (GraphQL multipart requests), queries and mutations over HTTP, and
// subscriptions over WebSocket (graphql-ws, where the server has one: the local server) or
// over Server-Sent Events (graphql-sse, which works where the API is deployed: give the stream
// function's URL). Operations are the playground's, typed by graphql-codegen (generated.ts).
// Run against a real server by the test command (run-examples.ts, tests/api/ts_clients.rs).
import { ApolloClient, ApolloLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import UploadHttpLink from "apollo-upload-client/UploadHttpLink.mjs";
import { print } from "graphql";
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { Observable } from "rxjs";
import {
  RandomCatDocument,
  RequestScanDocument,
  ScanUpdatedDocument,
  UploadImageDocument,
  type RandomCatQuery,
  type RandomCatQueryVariables,
  type RequestScanMutation,
  type RequestScanMutationVariables,
  type ScanUpdatedSubscription,
  type ScanUpdatedSubscriptionVariables,
  type UploadImageMutation,
  type UploadImageMutationVariables,
} from "./generated";

export interface ApolloOptions {
  /** e.g. "http://127.0.0.1:8080/graphql", or the API Gateway URL + "/graphql". */
  endpoint: string;
  apiKey?: string;
  /** How subscriptions travel: "ws" (graphql-transport-ws at <endpoint>/ws, the local server)
   * or "sse" (graphql-sse at <streamUrl or endpoint's server>/graphql/stream, also on AWS). */
  subscriptions: "ws" | "sse";
  /** On AWS, the stream function's URL (`serverless deploy` prints it). */
  streamUrl?: string;
  /** A WebSocket implementation where there is no global one (Node before 22: the `ws` package). */
  webSocketImpl?: unknown;
}

/** Subscriptions over Server-Sent Events: graphql-sse's client behind an Apollo link. */
class ServerSentEventsLink extends ApolloLink {
  constructor(private readonly client: ReturnType<typeof createSseClient>) {
    super();
  }

  override request(operation: ApolloLink.Operation): Observable<ApolloLink.Result> {
    return new Observable((sink) =>
      this.client.subscribe(
        { query: print(operation.query), variables: operation.variables, operationName: operation.operationName },
        {
          // graphql-sse's result is the execution result as sent: what an Apollo link yields.
          next: (value) => sink.next(value as ApolloLink.Result),
          error: (error) => sink.error(error),
          complete: () => sink.complete(),
        },
      ),
    );
  }
}

export function apolloClient(options: ApolloOptions): ApolloClient {
  const headers: Record<string, string> = options.apiKey ? { "x-api-key": options.apiKey } : {};
  const http = new UploadHttpLink({ uri: options.endpoint, headers });
  const server = options.endpoint.replace(/\/graphql$/, "");
  const subscriptions =
    options.subscriptions === "ws"
      ? new GraphQLWsLink(
          createWsClient({
            url: `${server.replace(/^http/, "ws")}/graphql/ws`,
            connectionParams: headers,
            webSocketImpl: options.webSocketImpl,
          }),
        )
      : new ServerSentEventsLink(
          createSseClient({
            url: `${(options.streamUrl ?? server).replace(/\/$/, "")}/graphql/stream`,
            headers,
            singleConnection: false,
          }),
        );
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    subscriptions,
    http,
  );
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

/** Uploads a photo, draws a random cat, and follows the photo's scan to its verdict. */
export async function uploadPickAndScan(
  client: ApolloClient,
  photo: Blob,
): Promise<{ uploaded: string; picked: string | null; isCat: boolean | null; statuses: string[] }> {
  const uploaded = await client.mutate<UploadImageMutation, UploadImageMutationVariables>({
    mutation: gql(UploadImageDocument),
    variables: { image: photo, label: "cat", weight: 0.7 },
  });
  const id = uploaded.data!.upload.id;
  const picked = await client.query<RandomCatQuery, RandomCatQueryVariables>({
    query: gql(RandomCatDocument),
    variables: { label: "cat" },
    fetchPolicy: "no-cache",
  });
  const scan = await client.mutate<RequestScanMutation, RequestScanMutationVariables>({
    mutation: gql(RequestScanDocument),
    variables: { id },
  });
  const statuses: string[] = [];
  const isCat = await new Promise<boolean | null>((resolve, reject) => {
    const subscription = client
      .subscribe<ScanUpdatedSubscription, ScanUpdatedSubscriptionVariables>({
        query: gql(ScanUpdatedDocument),
        variables: { scanId: scan.data!.requestScan.id },
      })
      .subscribe({
        next: ({ data, error }) => {
          if (error) return reject(error);
          const update = data!.scanUpdated;
          statuses.push(update.status);
          if (update.status === "SUCCEEDED" || update.status === "FAILED") {
            subscription.unsubscribe();
            resolve(update.isCat ?? null);
          }
        },
        error: reject,
      });
  });
  return { uploaded: id, picked: picked.data?.randomImage?.id ?? null, isCat, statuses };
}
